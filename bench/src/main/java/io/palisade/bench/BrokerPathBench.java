package io.palisade.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.testing.RawHttpClient;
import io.palisade.testing.TestingDirectories;
import java.io.BufferedReader;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.awaitility.Awaitility;

/**
 * The broker on the user's path: {@code palisade serve} as {@code bin/palisade} starts it (its jar, a fresh JVM, a
 * new data directory, metadata store and all), a {@code process} database created through the API, and one client with
 * HTTP keep-alive (a raw socket, so the client adds almost nothing) sending {@code SELECT 1} through Neon's
 * {@code POST /sql} and through PandaStack's {@code POST /v1/databases/{id}/proxy/v1/query} with the broker token, as
 * the README shows. Each route gets a database of its own and a new connection, and {@code -Dbench.broker.requests}
 * requests (default 6,000); the first 600 (cold: new connection, empty pool, first checks against the store) and the
 * rest (warm) are reported apart. Each {@link Start} runs on a server of its own, as a user's first requests would:
 * right after the creates, while each database's first base backup runs beside the requests, and once those backups
 * are done; each once without and once with the JVM's AOT cache that {@code bin/palisade} records from
 * {@code palisade train} (recorded here the same way first, and timed). Prints a table.
 */
final class BrokerPathBench {
    private static final int COLD = 600;
    private static final Duration BACKUP_WAIT = Duration.ofMinutes(3);
    private static final Duration SERVER_START = Duration.ofMinutes(3);
    private static final ObjectMapper MAPPER = new ObjectMapper();
    /** bin/palisade's JVM options, from the files it reads them from. */
    private static final Path JVM_ARGS = TestingDirectories.repoDir().resolve("bin/jvm");
    /** base.args for every JVM, and serve.args for palisade's when root runs it, as bin/palisade passes them. */
    private static final List<String> JVM_OPTIONS = "root".equals(System.getProperty("user.name"))
            ? List.of("@" + JVM_ARGS.resolve("base.args"), "@" + JVM_ARGS.resolve("serve.args"))
            : List.of("@" + JVM_ARGS.resolve("base.args"));

    private BrokerPathBench() {}

    /** When the first request comes, counted from the database's create. */
    enum Start {
        RIGHT_AFTER_CREATE("right after create (first base backup running)"),
        AFTER_FIRST_BACKUP("after the first base backup");

        final String label;

        Start(String label) {
            this.label = label;
        }
    }

    record Row(String route, long[] coldNanos, long[] warmNanos, double warmSeconds) {}

    static void run() throws Exception {
        int requests = requests();
        Path jar = TestingDirectories.repoDir().resolve("palisade-server/target/palisade.jar");
        Path work = TestingDirectories.newWorkDir("bench-broker-path");
        try {
            Path cache = work.resolve("palisade.aot");
            long trainStart = System.nanoTime();
            runToEnd(List.of(java(), "-XX:AOTCacheOutput=" + cache, "-jar", jar.toString(), "train", "--data-dir",
                    work.resolve("training").toString()), work.resolve("training.log"));
            long trainMs = (System.nanoTime() - trainStart) / 1_000_000;
            if (!Files.isRegularFile(cache)) {
                throw new IllegalStateException("palisade train wrote no AOT cache; see " + work.resolve("training.log"));
            }
            List<String> rows = new ArrayList<>();
            for (Start start : Start.values()) {
                for (boolean aot : new boolean[] {false, true}) {
                    String jvm = aot ? "AOT cache" : "none";
                    for (Row row : onFreshServer(jar, aot ? Optional.of(cache) : Optional.empty(), start, requests,
                            work.resolve("server-" + start.name().toLowerCase(Locale.ROOT) + "-" + aot))) {
                        rows.add(String.format(Locale.ROOT, "| %s | %s | %s | %.3f | %.3f | %.3f | %.3f | %.0f |",
                                start.label, jvm, row.route(), percentile(row.coldNanos(), 50),
                                percentile(row.coldNanos(), 99), percentile(row.warmNanos(), 50),
                                percentile(row.warmNanos(), 99), row.warmNanos().length / row.warmSeconds()));
                    }
                }
            }
            System.out.println();
            System.out.println("## broker SELECT 1 on the user's path: palisade serve from its jar (a fresh JVM and"
                    + " server per row pair), process rung, one client, HTTP keep-alive, " + requests
                    + " requests per route");
            System.out.println("machine: " + Machine.describe());
            System.out.printf(Locale.ROOT, "AOT cache: recorded by `palisade train` under -XX:AOTCacheOutput in %d ms"
                    + " (as bin/palisade does once per build), %d MB%n", trainMs, Files.size(cache) >> 20);
            System.out.println();
            System.out.println("| first request | JVM's AOT cache | route | cold p50 ms | cold p99 ms | warm p50 ms"
                    + " | warm p99 ms | warm req/s |");
            System.out.println("|---|---|---|---:|---:|---:|---:|---:|");
            rows.forEach(System.out::println);
            System.out.println();
            System.out.println("cold = the first " + COLD + " requests on a new connection to a database the broker has not"
                    + " served yet; warm = the rest");
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
    }

    private static String java() {
        return ProcessHandle.current().info().command().orElseThrow();
    }

    /** Runs a command to its end with its output in {@code log}; fails unless it exits 0. */
    private static void runToEnd(List<String> command, Path log) throws IOException, InterruptedException {
        List<String> full = new ArrayList<>(command);
        full.addAll(1, JVM_OPTIONS);
        Process process = new ProcessBuilder(full).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!process.waitFor(10, TimeUnit.MINUTES)) {
            process.destroy(); // SIGTERM: the training's shutdown hook stops its database and removes its directory
            if (!process.waitFor(60, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
            throw new IllegalStateException(String.join(" ", full) + " ran over 10 min; see " + log);
        }
        if (process.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", full) + " exited " + process.exitValue() + "; see " + log);
        }
    }

    /** Requests per route: {@code -Dbench.broker.requests} (default 6,000), at least 100 beyond the cold ones. */
    private static int requests() {
        return Math.max(COLD + 100, Integer.getInteger("bench.broker.requests", 6_000));
    }

    /**
     * Starts {@code palisade serve} from its jar in a new JVM (with the AOT cache if given) on a new data directory,
     * creates the two databases, measures both routes, deletes the databases and stops the server with SIGTERM.
     */
    private static List<Row> onFreshServer(Path jar, Optional<Path> cache, Start start, int requests, Path dataDir)
            throws Exception {
        String key = "pk_bench_" + Long.toHexString(System.nanoTime());
        List<String> command = new ArrayList<>(List.of(java()));
        command.addAll(JVM_OPTIONS);
        // AOTMode=on: a cache the JVM cannot use fails the start instead of measuring a JVM without it
        cache.ifPresent(file -> command.addAll(List.of("-XX:AOTMode=on", "-XX:AOTCache=" + file,
                "@" + JVM_ARGS.resolve("aot-cache.args"))));
        // no vm rung: the bench creates process databases only, a template VM booting beside the requests would be
        // measured with them, and a vm rung's start-up reconcile removes the namespaces in its pool it does not know
        command.addAll(List.of("-jar", jar.toString(), "serve", "-c", "server.data-dir=" + dataDir, "-c", "api.port=0",
                "-c", "proxy.port=0", "-c", "vm.enabled=false"));
        Path log = dataDir.resolveSibling(dataDir.getFileName() + ".log");
        ProcessBuilder builder = new ProcessBuilder(command).redirectError(log.toFile());
        builder.environment().put("PALISADE_BOOTSTRAP_API_KEY", key);
        Process server = builder.start();
        try {
            String api = apiUrl(server, log);
            HttpClient http = HttpClient.newHttpClient();
            JsonNode forNeon = create(http, api, key, "bench-neon");
            JsonNode forPanda = create(http, api, key, "bench-panda");
            if (start == Start.AFTER_FIRST_BACKUP) {
                long t0 = System.nanoTime();
                for (JsonNode db : List.of(forNeon, forPanda)) {
                    Awaitility.await("the first base backup of " + db.get("id").asText()).atMost(BACKUP_WAIT)
                            .pollInterval(Duration.ofMillis(100)).until(() -> restorable(http, api, key, db));
                }
                System.out.printf(Locale.ROOT, "first base backups done %d ms after the creates%n",
                        (System.nanoTime() - t0) / 1_000_000);
            }
            int port = URI.create(api).getPort();
            List<Row> rows = List.of(
                    measure(start, "POST /sql (Neon)", port, neonRequest(forNeon), requests),
                    measure(start, "POST /v1/databases/{id}/proxy/v1/query (PandaStack)", port,
                            pandaRequest(forPanda), requests));
            for (JsonNode db : List.of(forNeon, forPanda)) {
                http.send(HttpRequest.newBuilder(URI.create(api + "/v1/databases/" + db.get("id").asText()))
                        .header("Authorization", "Bearer " + key).DELETE().build(),
                        HttpResponse.BodyHandlers.discarding());
            }
            return rows;
        } finally {
            server.destroy();
            if (!server.waitFor(60, TimeUnit.SECONDS)) {
                server.destroyForcibly().waitFor();
            }
        }
    }

    /**
     * The REST API's base URL, from the "REST API:" line {@code palisade serve} prints once it is ready; a server that
     * exits or stays silent for {@link #SERVER_START} fails the bench, naming its log.
     */
    private static String apiUrl(Process server, Path log) throws IOException, InterruptedException {
        BufferedReader out = server.inputReader();
        CompletableFuture<String> url = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                for (String line; (line = out.readLine()) != null; ) {
                    String stripped = line.strip();
                    if (!url.isDone() && stripped.startsWith("REST API:")) {
                        url.complete(stripped.substring("REST API:".length()).strip().split("\\s+")[0]);
                    }
                }
                url.completeExceptionally(new IllegalStateException("its output ended"));
            } catch (IOException e) {
                url.completeExceptionally(e);
            }
        });
        try {
            return url.get(SERVER_START.toSeconds(), TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("palisade serve printed no REST API line within " + SERVER_START + " ("
                    + (e instanceof TimeoutException ? "silent" : e.getCause().getMessage()) + ", exit "
                    + (server.isAlive() ? "none yet" : Integer.toString(server.exitValue())) + "); see " + log, e);
        }
    }

    /** Whether the database's restorable window has begun: its first base backup is done. */
    private static boolean restorable(HttpClient http, String api, String key, JsonNode db) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(
                URI.create(api + "/v1/databases/" + db.get("id").asText() + "/backups"))
                .header("Authorization", "Bearer " + key).build(), HttpResponse.BodyHandlers.ofString());
        return response.statusCode() == 200
                && !MAPPER.readTree(response.body()).path("window").path("earliest").asText().isEmpty();
    }

    private static Row measure(Start start, String route, int port, byte[] request, int requests)
            throws IOException {
        long[] cold = new long[COLD];
        long[] warm = new long[requests - COLD];
        long warmStart = 0;
        try (RawHttpClient client = new RawHttpClient(port)) {
            for (int i = 0; i < requests; i++) {
                if (i == COLD) {
                    warmStart = System.nanoTime();
                }
                long t0 = System.nanoTime();
                client.send(request);
                long took = System.nanoTime() - t0;
                if (i < COLD) {
                    cold[i] = took;
                } else {
                    warm[i - COLD] = took;
                }
            }
        }
        double warmSeconds = (System.nanoTime() - warmStart) / 1e9;
        System.out.printf(Locale.ROOT, "%s, %s: %d requests done%n", route, start.label, requests);
        return new Row(route, cold, warm, warmSeconds);
    }

    private static double percentile(long[] nanos, double p) {
        long[] sorted = nanos.clone();
        Arrays.sort(sorted);
        int rank = (int) Math.ceil(p / 100.0 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))] / 1e6;
    }

    private static JsonNode create(HttpClient http, String api, String key, String label) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(api + "/v1/databases"))
                .header("Authorization", "Bearer " + key)
                .POST(HttpRequest.BodyPublishers.ofString(
                        "{\"label\":\"" + label + "\",\"isolation\":\"process\"}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 201) {
            throw new IllegalStateException("create of a process database answered " + response.statusCode() + ": "
                    + response.body());
        }
        return MAPPER.readTree(response.body());
    }

    /** Neon's {@code /sql} as {@code @neondatabase/serverless} sends it: the login in the connection string header. */
    private static byte[] neonRequest(JsonNode db) {
        String connection = "postgres://" + encode(db.get("username").asText()) + ":"
                + encode(db.get("password").asText()) + "@" + db.get("id").asText() + ".db.localhost/"
                + encode(db.get("database").asText());
        return RawHttpClient.post("/sql", "Neon-Connection-String: " + connection + "\r\nNeon-Raw-Text-Output: true\r\n"
                + "Neon-Array-Mode: true\r\n", "{\"query\":\"SELECT 1\",\"params\":[]}");
    }

    /** PandaStack's {@code v1/query} under the database's broker URL, with its broker token. */
    private static byte[] pandaRequest(JsonNode db) {
        String path = URI.create(db.get("broker_url").asText()).getPath() + "/v1/query";
        return RawHttpClient.post(path, "Authorization: Bearer " + db.get("broker_token").asText() + "\r\n"
                + "Content-Type: application/json\r\n", "{\"database\":\"pandastack\",\"sql\":\"SELECT 1\"}");
    }

    private static String encode(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }
}
