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
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * pgbench through the palisade proxy vs through PgBouncer in the same position (TLS to the client, session mode,
 * plaintext to the same backend) vs direct TLS to the same PostgreSQL 16, which serves the proxy's certificate. For
 * each workload (select-only {@code -S}, TPC-B, and select-only with a new connection per transaction {@code -C}) and
 * each client count (1, 8, 64) it runs the three paths back to back and prints one table: TPS, palisade ÷ PgBouncer,
 * palisade ÷ direct, PgBouncer ÷ direct, and the p99 latency each path adds to direct (from pgbench's
 * per-transaction log; under {@code -C} the time from one transaction's end to the next one's of the same client, so
 * connecting and logging in count). The first line names the machine; no VM is involved (accelerator: none).
 *
 * <p>Each cell's seconds are split into {@code rounds} (default 3) slices and the three paths take turns slice by
 * slice, so that background load on a shared machine falls on all of them alike; TPS is the mean over the slices and
 * the p99 is over all their transactions. Arguments: {@code [seconds per path and cell (default 6)] [scale (default
 * 10)]}; system properties {@code workloads}
 * (default {@code select,tpcb,connect}), {@code clients} (default {@code 1,8,64}), {@code ioThreads} (the proxy's
 * event loops, default 0 = one per core), {@code targets} (default {@code direct,palisade,pgbouncer}),
 * {@code maxIdleBackends} and {@code backendIdleMillis} (the proxy's backend reuse, defaults as {@code palisade serve}:
 * 64 and 30000; it prints how many client connections a parked backend served). Loopback only. Run it with the test
 * classpath, or through {@code bench/run proxy}.
 */
public final class ProxyBench {
    private static final String DOMAIN = "db.localhost";
    private static final String ID = "db-bench0001";
    private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+) \\((?:without|excluding) initial connection");
    private static final Pattern TPS_ANY = Pattern.compile("tps = ([0-9.]+)");
    /** Each cell's time is split into this many turns per path. */
    private static final int ROUNDS = Integer.getInteger("rounds", 3);

    private ProxyBench() {}

    enum Workload {
        SELECT("-S", List.of("-S")),
        TPCB("TPC-B", List.of()),
        CONNECT("-S -C", List.of("-S", "-C"));

        final String label;
        final List<String> flags;

        Workload(String label, List<String> flags) {
            this.label = label;
            this.flags = flags;
        }
    }

    /** @param cpuMicrosPerTransaction CPU the path (proxy threads or PgBouncer) spent per transaction */
    record Measured(double tps, double p99Millis, double cpuMicrosPerTransaction) {
        static final Measured NONE = new Measured(Double.NaN, Double.NaN, Double.NaN);
    }

    /** One pgbench run: its TPS, every transaction's latency in microseconds, and the path's CPU time (ns). */
    record Slice(double tps, List<Long> latencies, long cpuNanos) {}

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 6;
        int scale = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        Path work = TestingDirectories.newWorkDir("proxy-bench");
        try {
            run(work, seconds, scale);
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
    }

    private static void run(Path work, int seconds, int scale) throws Exception {
        long started = System.nanoTime();
        double loadAtStart = java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
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
                "max_connections", "300");
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        List<String> targets = List.of(System.getProperty("targets", "direct,palisade,pgbouncer").split(","));
        ProxyConfig defaults = ProxyConfig.defaults(DOMAIN, work.resolve("tls"));
        try (TestingPostgres pg = new TestingPostgres(PostgresVersion.DEFAULT, settings);
                PostgresProxy proxy = new PostgresProxy(
                        defaults
                                .withBind("127.0.0.1", 0)
                                .withIoThreads(Integer.getInteger("ioThreads", 0))
                                .withLimits(500, 10_000)
                                .withBackendPool(Duration.ofMillis(Long.getLong("backendIdleMillis",
                                        defaults.backendIdleTimeout().toMillis())),
                                        Integer.getInteger("maxIdleBackends",
                                                defaults.maxIdleBackendsPerDatabase())),
                        // an in-memory lookup, like the control plane's cache: no artificial delay in the numbers
                        id -> CompletableFuture.completedFuture(ID.equals(id)
                                ? Optional.of(io.palisade.spi.Backend.direct(pg.endpoint())) : Optional.empty()),
                        id -> CompletableFuture.completedFuture(
                                ID.equals(id) ? Optional.of(pg.credentials()) : Optional.empty()),
                        registry).start();
                TestingPgBouncer bouncer = new TestingPgBouncer(Files.createDirectory(work.resolve("pgbouncer")),
                        pg.endpoint(), pg.credentials().database(), pg.credentials().username(),
                        pg.credentials().password(), tls.certificateFile(), tls.privateKeyFile())) {
            String password = pg.credentials().password();
            Path ca = tls.caCertificateFile().orElseThrow();
            String names = " dbname=" + pg.credentials().database() + " user=" + pg.credentials().username();
            Map<String, String> conninfo = Map.of(
                    "direct", "host=127.0.0.1 port=" + pg.endpoint().port() + names + " sslmode=require",
                    "palisade", "host=" + ID + "." + DOMAIN + " hostaddr=127.0.0.1 port=" + proxy.port() + names
                            + " sslmode=verify-full sslrootcert=" + ca,
                    "pgbouncer", "host=127.0.0.1 port=" + bouncer.port() + names + " sslmode=require");
            ExternalClient.Result init = ExternalClient.run(
                    List.of("pgbench", "-i", "-q", "-s", Integer.toString(scale), conninfo.get("direct")),
                    Map.of("PGPASSWORD", password), work, Duration.ofMinutes(5));
            if (init.exitCode() != 0) {
                throw new IllegalStateException("pgbench -i failed: " + init.all());
            }
            // warm every path (JIT, pools) before measuring
            for (String target : targets) {
                slice(work, conninfo.get(target), password, Workload.SELECT, 8, 2, () -> 0L);
            }
            List<String> rows = new ArrayList<>();
            for (String workloadName : System.getProperty("workloads", "select,tpcb,connect").split(",")) {
                Workload workload = Workload.valueOf(workloadName.toUpperCase(Locale.ROOT));
                for (String clients : System.getProperty("clients", "1,8,64").split(",")) {
                    // the cell's time in ROUNDS slices, the paths taking turns: on a shared machine the background
                    // load then falls on all three alike
                    Map<String, List<Slice>> slices = new java.util.HashMap<>();
                    Map<String, java.util.function.LongSupplier> cpu = Map.of("direct", () -> 0L,
                            "palisade", ProxyBench::proxyCpuNanos,
                            "pgbouncer", bouncer::cpuNanos);
                    for (int round = 0; round < ROUNDS; round++) {
                        for (String target : targets) {
                            slices.computeIfAbsent(target, t -> new ArrayList<>()).add(slice(work,
                                    conninfo.get(target), password, workload, Integer.parseInt(clients),
                                    Math.max(1, seconds / ROUNDS), cpu.get(target)));
                        }
                    }
                    Map<String, Measured> cell = new java.util.HashMap<>();
                    slices.forEach((target, list) -> cell.put(target, combine(list)));
                    Measured d = cell.getOrDefault("direct", Measured.NONE);
                    Measured p = cell.getOrDefault("palisade", Measured.NONE);
                    Measured b = cell.getOrDefault("pgbouncer", Measured.NONE);
                    rows.add(String.format(Locale.ROOT,
                            "| %-6s | %3s | %7.0f | %7.0f | %7.0f | **%.2f** | %.2f | %.2f | %+.2f | %+.2f"
                                    + " | %.0f | %.0f |",
                            workload.label, clients, d.tps(), p.tps(), b.tps(), p.tps() / b.tps(),
                            p.tps() / d.tps(), b.tps() / d.tps(), p.p99Millis() - d.p99Millis(),
                            b.p99Millis() - d.p99Millis(), p.cpuMicrosPerTransaction(),
                            b.cpuMicrosPerTransaction()));
                }
            }
            System.out.println();
            System.out.printf(Locale.ROOT, "## proxy: palisade vs %s vs direct TLS, pgbench %s, %s UTC%n",
                    TestingPgBouncer.version(), pgbenchVersion(), LocalDate.now(ZoneOffset.UTC));
            System.out.printf(Locale.ROOT, "machine: %s; accelerator: none (no VM: loopback TCP only)%n", machine());
            System.out.printf(Locale.ROOT, "palisade transport: %s, %d event loops; %d s per cell, scale %d, the"
                    + " paths taking turns in %d slices, load average %.1f at the start and %.1f at the end, whole run"
                    + " %d s%n", proxy.transport(), proxy.ioThreads(), seconds, scale, ROUNDS, loadAtStart,
                    java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
                    (System.nanoTime() - started) / 1_000_000_000L);
            System.out.println();
            var handshakes = registry.find("palisade.proxy.handshake").timer();
            System.out.printf(Locale.ROOT, "palisade reused a parked backend for %.0f of %d client connections"
                    + " (proxy.max-idle-backends-per-database %d, proxy.backend-idle-timeout %s)%n",
                    registry.get("palisade.proxy.backends.reused").counter().count(),
                    handshakes == null ? 0 : handshakes.count(), proxy.config().maxIdleBackendsPerDatabase(),
                    proxy.config().backendIdleTimeout());
            System.out.println("| pgbench | clients | direct TPS | palisade TPS | PgBouncer TPS | palisade ÷ PgBouncer"
                    + " | palisade ÷ direct | PgBouncer ÷ direct | p99 added by palisade, ms"
                    + " | p99 added by PgBouncer, ms | palisade CPU µs/tx | PgBouncer CPU µs/tx |");
            System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            rows.forEach(System.out::println);
        }
    }

    private static String machine() {
        String cpu = "unknown CPU";
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            cpu = lines.filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).strip())
                    .findFirst()
                    .orElse(cpu);
        } catch (IOException ignored) {
            // keep unknown
        }
        long memGiB = ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getTotalMemorySize() >> 30;
        return Runtime.getRuntime().availableProcessors() + " cores (" + cpu + "), " + memGiB + " GiB RAM, "
                + System.getProperty("os.name") + " " + System.getProperty("os.version") + ", Java "
                + Runtime.version().feature();
    }

    private static String pgbenchVersion() {
        ExternalClient.Result result = ExternalClient.run(List.of("pgbench", "--version"), Map.of(), null,
                Duration.ofSeconds(10));
        return result.stdout().strip().replace("pgbench (PostgreSQL) ", "");
    }

    private static Measured combine(List<Slice> slices) {
        double tps = slices.stream().mapToDouble(Slice::tps).average().orElse(Double.NaN);
        List<Long> latencies = new ArrayList<>();
        slices.forEach(slice -> latencies.addAll(slice.latencies()));
        latencies.sort(null);
        double p99 = latencies.isEmpty() ? Double.NaN : latencies.get((int) (latencies.size() * 0.99)) / 1000.0;
        long cpuNanos = slices.stream().mapToLong(Slice::cpuNanos).sum();
        return new Measured(tps, p99, latencies.isEmpty() ? Double.NaN : cpuNanos / 1000.0 / latencies.size());
    }

    /**
     * CPU time of the proxy's threads in this JVM: its event loops and the carriers of the virtual threads it runs
     * SCRAM on (nothing else in the benchmark uses virtual threads while pgbench runs).
     */
    private static long proxyCpuNanos() {
        java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
        long total = 0;
        for (java.lang.management.ThreadInfo info : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (info != null && (info.getThreadName().startsWith("palisade-proxy")
                    || info.getThreadName().startsWith("ForkJoinPool"))) {
                long nanos = threads.getThreadCpuTime(info.getThreadId());
                total += Math.max(0, nanos);
            }
        }
        return total;
    }

    private static Slice slice(Path work, String conninfo, String password, Workload workload, int clients,
            int seconds, java.util.function.LongSupplier cpu) throws IOException {
        long cpuBefore = cpu.getAsLong();
        Path logDir = Files.createTempDirectory(work, "log");
        List<String> command = new ArrayList<>(List.of("pgbench", "-n", "-c", Integer.toString(clients),
                "-j", Integer.toString(Math.min(2, clients)), "-T", Integer.toString(seconds), "-l",
                "--log-prefix=" + logDir.resolve("tx")));
        command.addAll(workload.flags);
        command.add(conninfo);
        ExternalClient.Result result = ExternalClient.run(command, Map.of("PGPASSWORD", password), work,
                Duration.ofSeconds(seconds + 120L));
        long cpuNanos = cpu.getAsLong() - cpuBefore;
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
        // log line: client_id transaction_no latency_us script_no epoch_s us; pgbench's latency starts after the
        // connection, so under -C the cycle (end to end of one client's transactions: connect, query, disconnect) is
        // the latency a client sees
        List<Long> latencies = new ArrayList<>();
        Map<String, Long> lastEnd = new java.util.HashMap<>();
        try (Stream<Path> files = Files.list(logDir)) {
            for (Path file : files.sorted().toList()) {
                try (Stream<String> lines = Files.lines(file)) {
                    lines.forEach(line -> {
                        String[] fields = line.split(" ");
                        if (fields.length < 6) {
                            return;
                        }
                        if (workload == Workload.CONNECT) {
                            long end = Long.parseLong(fields[4]) * 1_000_000L + Long.parseLong(fields[5]);
                            Long previous = lastEnd.put(file.getFileName() + "/" + fields[0], end);
                            if (previous != null) {
                                latencies.add(end - previous);
                            }
                        } else {
                            latencies.add(Long.parseLong(fields[2]));
                        }
                    });
                }
            }
        }
        TestingDirectories.deleteRecursively(logDir);
        return new Slice(tps, latencies, cpuNanos);
    }
}
