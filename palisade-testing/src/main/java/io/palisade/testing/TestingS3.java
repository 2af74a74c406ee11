package io.palisade.testing;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * A real S3-compatible server for tests: S3Proxy (Maven Central {@code org.gaul:s3proxy}, jar-with-dependencies) with
 * its filesystem backend, run as its own JVM on a random loopback port, requiring AWS signatures with a random access
 * key and secret. It starts with one empty bucket ({@link Settings#bucket()}). Start is bounded and fails with the log
 * tail; close stops the server (also if the test JVM exits first) and removes every file. Idempotent close; not
 * thread-safe for concurrent close.
 */
public final class TestingS3 implements AutoCloseable {
    public static final String REGION = "us-east-1";
    public static final String BUCKET = "palisade-test";
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    private static final int START_ATTEMPTS = 3;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Path workDir;
    private final Path dataDir;
    private final Path logFile;
    private final Settings settings;
    private final HttpClient http;
    private Process process;
    private Thread shutdownHook;

    public TestingS3() {
        Path dir = TestingDirectories.newWorkDir("s3");
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        try {
            this.workDir = dir;
            this.dataDir = Files.createDirectory(dir.resolve("data"));
            this.logFile = dir.resolve("s3proxy.log");
            String accessKeyId = "PALISADE" + HexFormat.of().withUpperCase().formatHex(randomBytes(6));
            String secret = HexFormat.of().formatHex(randomBytes(20));
            Settings started = null;
            for (int attempt = 1; started == null; attempt++) {
                int port = freePort();
                Settings candidate = new Settings(URI.create("http://127.0.0.1:" + port), REGION, BUCKET, accessKeyId,
                        secret);
                if (start(candidate, attempt == START_ATTEMPTS)) {
                    started = candidate;
                }
            }
            this.settings = started;
            createBucket(BUCKET);
        } catch (IOException e) {
            stop();
            TestingDirectories.deleteRecursively(dir);
            throw new UncheckedIOException(e);
        } catch (RuntimeException e) {
            stop();
            TestingDirectories.deleteRecursively(dir);
            throw e;
        }
    }

    /** Starts S3Proxy on {@code candidate}'s port; false if that port was taken meanwhile and {@code last} is false. */
    private boolean start(Settings candidate, boolean last) throws IOException {
        Path conf = workDir.resolve("s3proxy.conf");
        Files.deleteIfExists(conf);
        Files.createFile(conf, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(conf, String.join("\n",
                "s3proxy.endpoint=" + candidate.endpoint(),
                "s3proxy.authorization=aws-v2-or-v4",
                "s3proxy.identity=" + candidate.accessKeyId(),
                "s3proxy.credential=" + candidate.secretAccessKey(),
                "jclouds.provider=filesystem",
                "jclouds.filesystem.basedir=" + dataDir,
                ""));
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-jar",
                s3proxyJar().toString(),
                "--properties",
                conf.toString()));
        ProcessBuilder builder = new ProcessBuilder(command)
                .directory(workDir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(logFile.toFile());
        builder.environment().put("LOG_LEVEL", "info");
        builder.environment().put("JETTY_LOG_LEVEL", "warn");
        process = builder.start();
        Process started = process;
        shutdownHook = Thread.ofPlatform().name("testing-s3-shutdown").unstarted(started::destroyForcibly);
        Runtime.getRuntime().addShutdownHook(shutdownHook);

        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (true) {
            if (!started.isAlive()) {
                String log = logTail();
                stop();
                if (!last && (log.contains("Address already in use") || log.contains("BindException"))) {
                    return false;
                }
                throw new IllegalStateException("S3Proxy exited with code " + started.exitValue()
                        + " while starting at " + candidate.endpoint() + "; its log (" + logFile + ") ends with:\n"
                        + log);
            }
            try {
                HttpResponse<String> response = send(candidate, "GET", "/");
                if (response.statusCode() == 200) {
                    return true;
                }
                throw new IllegalStateException("S3Proxy at " + candidate.endpoint()
                        + " answered ListBuckets with HTTP " + response.statusCode() + ": " + response.body()
                        + "\nlog:\n" + logTail());
            } catch (ConnectException e) {
                // not listening yet
            }
            if (System.nanoTime() > deadline) {
                stop();
                throw new IllegalStateException("S3Proxy did not listen on " + candidate.endpoint() + " within "
                        + START_TIMEOUT.toSeconds() + " s; its log (" + logFile + ") ends with:\n" + logTail());
            }
            sleep(Duration.ofMillis(100));
        }
    }

    /** Where this server is and how to sign in. */
    public Settings settings() {
        return settings;
    }

    /** Creates another bucket (the server starts with {@link #BUCKET}). */
    public void createBucket(String name) {
        requireNonNull(name, "name is null");
        try {
            HttpResponse<String> response = send(settings, "PUT", "/" + name);
            if (response.statusCode() != 200) {
                throw new IllegalStateException("S3Proxy refused to create bucket " + name + ": HTTP "
                        + response.statusCode() + " " + response.body());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create bucket " + name + " on S3Proxy at " + settings.endpoint(), e);
        }
    }

    /**
     * The directory where the filesystem backend keeps {@code bucket}'s objects, one file per key (a key's {@code /}
     * are directories): for tests that damage or remove an object behind a client's back.
     */
    public Path bucketDir(String bucket) {
        return dataDir.resolve(bucket);
    }

    public Path logFile() {
        return logFile;
    }

    /** One request signed with AWS signature version 2 (enough for the fixture's own calls). */
    private HttpResponse<String> send(Settings target, String method, String path) throws IOException {
        String date = DateTimeFormatter.RFC_1123_DATE_TIME.withLocale(Locale.ROOT)
                .format(ZonedDateTime.now(ZoneOffset.UTC));
        String stringToSign = method + "\n\n\n" + date + "\n" + path;
        String signature;
        try {
            Mac mac = Mac.getInstance("HmacSHA1");
            mac.init(new SecretKeySpec(target.secretAccessKey().getBytes(StandardCharsets.UTF_8), "HmacSHA1"));
            signature = Base64.getEncoder().encodeToString(mac.doFinal(stringToSign.getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
        HttpRequest request = HttpRequest.newBuilder(target.endpoint().resolve(path))
                .timeout(Duration.ofSeconds(30))
                .header("Date", date)
                .header("Authorization", "AWS " + target.accessKeyId() + ":" + signature)
                .method(method, HttpRequest.BodyPublishers.noBody())
                .build();
        try {
            return http.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    private String logTail() {
        try {
            List<String> lines = Files.readAllLines(logFile);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private void stop() {
        Process running = process;
        process = null;
        if (running != null) {
            running.destroy();
            try {
                if (!running.waitFor(10, TimeUnit.SECONDS)) {
                    running.destroyForcibly();
                    running.waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                running.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        if (shutdownHook != null) {
            try {
                Runtime.getRuntime().removeShutdownHook(shutdownHook);
            } catch (IllegalStateException e) {
                // the JVM is already shutting down: the hook runs anyway
            }
            shutdownHook = null;
        }
    }

    @Override
    public void close() {
        stop();
        http.close();
        TestingDirectories.deleteRecursively(workDir);
    }

    /**
     * The S3Proxy jar: {@code -Dpalisade.s3proxy.jar}, else the copy palisade-testing's build puts in the shared test
     * cache, else the local Maven repository.
     */
    static Path s3proxyJar() {
        String explicit = System.getProperty("palisade.s3proxy.jar");
        if (explicit != null) {
            return Path.of(explicit);
        }
        String version = serverVersion("s3proxy.version");
        String name = "s3proxy-" + version + "-jar-with-dependencies.jar";
        String repo = System.getProperty("maven.repo.local",
                Path.of(System.getProperty("user.home"), ".m2", "repository").toString());
        List<Path> candidates = List.of(
                TestingDirectories.cacheDir().resolve(name),
                Path.of(repo, "org", "gaul", "s3proxy", version, name));
        for (Path candidate : candidates) {
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        throw new IllegalStateException("S3Proxy " + version + " is not in " + candidates + ": build palisade-testing "
                + "(mvn -pl palisade-testing install), which fetches org.gaul:s3proxy:" + version
                + ":jar:jar-with-dependencies into the first of them");
    }

    private static String serverVersion(String name) {
        Properties properties = new Properties();
        try (InputStream in = TestingS3.class.getResourceAsStream("servers.properties")) {
            if (in == null) {
                throw new IllegalStateException("io/palisade/testing/servers.properties is missing: rebuild "
                        + "palisade-testing");
            }
            properties.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String value = properties.getProperty(name);
        if (value == null || value.startsWith("${")) {
            throw new IllegalStateException(name + " was not filled in by the build: rebuild palisade-testing");
        }
        return value;
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    private static byte[] randomBytes(int n) {
        byte[] bytes = new byte[n];
        RANDOM.nextBytes(bytes);
        return bytes;
    }

    private static void sleep(Duration duration) {
        try {
            Thread.sleep(duration);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for S3Proxy", e);
        }
    }

    /**
     * How to reach the server.
     *
     * @param endpoint the S3 API's base URL on loopback (path-style addressing)
     * @param secretAccessKey never printed by {@link #toString()}
     */
    public record Settings(URI endpoint, String region, String bucket, String accessKeyId, String secretAccessKey) {
        public Settings {
            requireNonNull(endpoint, "endpoint is null");
            requireNonNull(region, "region is null");
            requireNonNull(bucket, "bucket is null");
            requireNonNull(accessKeyId, "accessKeyId is null");
            requireNonNull(secretAccessKey, "secretAccessKey is null");
        }

        @Override
        public String toString() {
            return "Settings[endpoint=" + endpoint + ", region=" + region + ", bucket=" + bucket + ", accessKeyId="
                    + accessKeyId + ", secretAccessKey=***]";
        }
    }
}
