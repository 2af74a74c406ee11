package io.palisade.proxy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.palisade.host.ServiceUser;
import io.palisade.spi.PostgresVersion;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * pgbench select-only through the proxy vs direct TLS to the same PostgreSQL 16 (which serves the proxy's own
 * certificate), at 8 and 64 clients, plus connection setup rate ({@code pgbench --connect}). Prints one table with
 * the TPS ratio (goal at least 0.90) and the added p50 latency (from pgbench's per-transaction log).
 *
 * <p>Each configuration runs {@code rounds} times, direct and proxy back to back, and the medians are reported: on a
 * small shared machine single runs are noisy. Arguments: {@code [seconds-per-run (default 10)] [scale (default 10)]
 * [rounds (default 3)]}; system property {@code runs} picks the runs (default
 * {@code select:8,select:64,connect:8}), {@code ioThreads} overrides the proxy's event-loop count. Run it with the test
 * classpath, e.g. {@code java -cp target/test-classes:target/classes:<test classpath> io.palisade.proxy.ProxyBench}.
 */
public final class ProxyBench {
    private static final String DOMAIN = "db.localhost";
    private static final String ID = "db-bench0001";
    private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+) \\((?:without|excluding) initial connection");
    private static final Pattern TPS_ANY = Pattern.compile("tps = ([0-9.]+)");

    private ProxyBench() {}

    record Run(String name, int clients, boolean connect) {}

    record Measured(double tps, double p50Millis, double p99Millis) {}

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        int scale = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        Path work = TestingDirectories.newWorkDir("proxy-bench");
        try {
            run(work, seconds, scale, rounds);
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
    }

    private static void run(Path work, int seconds, int scale, int rounds) throws Exception {
        TlsMaterial tls = TlsMaterial.loadOrGenerate(work.resolve("tls"), DOMAIN);
        // PostgreSQL wants its key owned by the server's user and mode 600: give it a copy
        Path pgTls = work.resolve("pg-tls");
        Files.createDirectories(pgTls);
        Path pgCert = Files.copy(tls.certificateFile(), pgTls.resolve("server.crt"));
        Path pgKey = Files.copy(tls.privateKeyFile(), pgTls.resolve("server.key"));
        Files.setPosixFilePermissions(pgKey, PosixFilePermissions.fromString("rw-------"));
        Files.setPosixFilePermissions(pgTls, PosixFilePermissions.fromString("rwxr-xr-x"));
        ServiceUser.resolve(ServiceUser.DEFAULT_NAME).chown(pgTls);
        Map<String, String> settings = Map.of(
                "ssl", "on",
                "ssl_cert_file", pgCert.toString(),
                "ssl_key_file", pgKey.toString(),
                "max_connections", "200");
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (TestingPostgres pg = new TestingPostgres(PostgresVersion.DEFAULT, settings);
                PostgresProxy proxy = new PostgresProxy(
                        ProxyConfig.defaults(DOMAIN, work.resolve("tls"))
                                .withBind("127.0.0.1", 0)
                                .withIoThreads(Integer.getInteger("ioThreads", 0))
                                .withLimits(500, 10_000),
                        // an in-memory lookup, like the control plane's cache: no artificial delay in the numbers
                        id -> CompletableFuture.completedFuture(
                                ID.equals(id) ? Optional.of(io.palisade.spi.Backend.direct(pg.endpoint())) : Optional.empty()),
                        id -> CompletableFuture.completedFuture(
                                ID.equals(id) ? Optional.of(pg.credentials()) : Optional.empty()),
                        registry).start()) {
            String password = pg.credentials().password();
            Path ca = tls.caCertificateFile().orElseThrow();
            String direct = "host=127.0.0.1 port=" + pg.endpoint().port() + " dbname=app user=app sslmode=require";
            String viaProxy = "host=" + ID + "." + DOMAIN + " hostaddr=127.0.0.1 port=" + proxy.port()
                    + " dbname=app user=app sslmode=" + System.getProperty("proxySslmode", "verify-full")
                    + " sslrootcert=" + ca;
            ExternalClient.Result init = ExternalClient.run(
                    List.of("pgbench", "-i", "-q", "-s", Integer.toString(scale), direct),
                    Map.of("PGPASSWORD", password), work, Duration.ofMinutes(5));
            if (init.exitCode() != 0) {
                throw new IllegalStateException("pgbench -i failed: " + init.all());
            }
            List<Run> runs = new ArrayList<>();
            for (String spec : System.getProperty("runs", "select:8,select:64,connect:8").split(",")) {
                String[] parts = spec.split(":");
                boolean connect = parts[0].equals("connect");
                runs.add(new Run(connect ? "connect (-C)" : "select-only", Integer.parseInt(parts[1]), connect));
            }
            List<String> rows = new ArrayList<>();
            for (Run run : runs) {
                // warm both paths briefly, then measure direct and proxy back to back
                measure(work, direct, password, run, Math.min(3, seconds));
                measure(work, viaProxy, password, run, Math.min(3, seconds));
                List<Measured> directRuns = new ArrayList<>();
                List<Measured> proxyRuns = new ArrayList<>();
                for (int round = 0; round < rounds; round++) {
                    directRuns.add(measure(work, direct, password, run, seconds));
                    proxyRuns.add(measure(work, viaProxy, password, run, seconds));
                }
                Measured d = median(directRuns);
                Measured p = median(proxyRuns);
                rows.add(String.format(Locale.ROOT,
                        "| %-13s | %7d | %11.0f | %11.0f | %5.2f | %9.3f | %9.3f | %+9.3f |",
                        run.name(), run.clients(), d.tps(), p.tps(), p.tps() / d.tps(), d.p50Millis(),
                        p.p50Millis(), p.p50Millis() - d.p50Millis()));
            }
            System.out.println();
            System.out.printf(Locale.ROOT, "proxy vs direct TLS, pgbench -S, %d s per run, median of %d rounds,"
                    + " scale %d, %d cores, load average at end %.1f%n", seconds, rounds, scale,
                    Runtime.getRuntime().availableProcessors(),
                    java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            System.out.println("| run           | clients | direct tps  | proxy tps   | ratio | p50 dir ms | p50 prx ms"
                    + " | added p50 |");
            System.out.println("|---------------|---------|-------------|-------------|-------|-----------|-----------"
                    + "|-----------|");
            rows.forEach(System.out::println);
            var handshake = registry.get("palisade.proxy.handshake").timer().takeSnapshot();
            System.out.printf(Locale.ROOT, "proxy handshake (accept to ready-for-query): %d sessions, mean %.2f ms,"
                    + " max %.2f ms%n", handshake.count(), handshake.mean(TimeUnit.MILLISECONDS),
                    handshake.max(TimeUnit.MILLISECONDS));
        }
    }

    private static Measured median(List<Measured> runs) {
        List<Double> tps = runs.stream().map(Measured::tps).sorted().toList();
        List<Double> p50 = runs.stream().map(Measured::p50Millis).sorted().toList();
        List<Double> p99 = runs.stream().map(Measured::p99Millis).sorted().toList();
        int middle = runs.size() / 2;
        return new Measured(tps.get(middle), p50.get(middle), p99.get(middle));
    }

    private static Measured measure(Path work, String conninfo, String password, Run run, int seconds)
            throws IOException {
        Path logDir = Files.createTempDirectory(work, "log");
        List<String> command = new ArrayList<>(List.of("pgbench", "-n", "-S", "-c", Integer.toString(run.clients()),
                "-j", "2", "-T", Integer.toString(seconds), "-l", "--log-prefix=" + logDir.resolve("tx")));
        if (run.connect()) {
            command.add("-C");
        }
        command.add(conninfo);
        ExternalClient.Result result = ExternalClient.run(command, Map.of("PGPASSWORD", password), work,
                Duration.ofSeconds(seconds + 120L));
        if (result.exitCode() != 0) {
            throw new IllegalStateException("pgbench failed: " + result.all());
        }
        Matcher matcher = TPS.matcher(result.stdout());
        if (!matcher.find()) {
            matcher = TPS_ANY.matcher(result.stdout());
            if (!matcher.find()) {
                throw new IllegalStateException("no tps in pgbench output: " + result.stdout());
            }
        }
        double tps = Double.parseDouble(matcher.group(1));
        List<Long> latencies = new ArrayList<>();
        try (Stream<Path> files = Files.list(logDir)) {
            for (Path file : files.toList()) {
                try (Stream<String> lines = Files.lines(file)) {
                    lines.forEach(line -> {
                        String[] fields = line.split(" ");
                        if (fields.length > 2) {
                            latencies.add(Long.parseLong(fields[2]));
                        }
                    });
                }
            }
        }
        latencies.sort(null);
        double p50 = latencies.isEmpty() ? Double.NaN : latencies.get(latencies.size() / 2) / 1000.0;
        double p99 = latencies.isEmpty() ? Double.NaN : latencies.get((int) (latencies.size() * 0.99)) / 1000.0;
        return new Measured(tps, p50, p99);
    }
}
