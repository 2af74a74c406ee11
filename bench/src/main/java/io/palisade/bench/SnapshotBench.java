package io.palisade.bench;

import static org.awaitility.Awaitility.await;

import io.palisade.cli.Cli;
import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import io.palisade.server.Main;
import io.palisade.server.PalisadeServer;
import io.palisade.server.ServerConfig;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.store.DatabaseRecord;
import io.palisade.testing.TestingDirectories;
import io.palisade.vmm.VmDriver;
import io.palisade.vmm.VmDriverConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import picocli.CommandLine;

/**
 * Issues 7 and 15: create by cloning a template snapshot vs a cold boot (driver, same run, interleaved); the new user's
 * path (a fresh server preparing its template at start, the first and later creates through the API, first query via
 * the proxy); wake of a suspended database from the client's connect through the proxy to the first row, the clone's
 * first suspend apart; host memory of a running vs a suspended database.
 */
final class SnapshotBench {
    private static final int CLONES = 20;
    private static final int COLDS = 5;
    private static final int WAKES = 20;
    private static final int API_CREATES = 10;

    private SnapshotBench() {}

    static void run() throws Exception {
        Path work = TestingDirectories.newWorkDir("bench-snap");
        Path image = TestingDirectories.repoDir().resolve(".cache/guest/current");
        ServiceUser user = ServiceUser.resolve("palisade");
        Stats clone = new Stats();
        Stats cold = new Stats();
        Stats wake = new Stats();
        long runningRssKiB = -1;
        long suspendedMemoryFileMiB = -1;
        String accelerator;
        VmDriver cloning = new VmDriver(VmDriverConfig.defaults(work.resolve("c"), image, user, Cgroups.detect("palisade"))
                .withNetworkPool("10.218.0.0/24"));
        VmDriver booting = new VmDriver(VmDriverConfig.defaults(work.resolve("b"), image, user, Cgroups.detect("palisade"))
                .withNetworkPool("10.218.1.0/24"), work.resolve("b/.templates"), false);
        accelerator = cloning.probe().accelerator();
        try {
            System.err.println("snapshot: building the template (first clone)");
            clone(cloning, "db-warmup1", new Stats());
            cloning.destroy("db-warmup1");
            for (int i = 0; i < CLONES; i++) {
                clone(cloning, "db-clone" + i, clone);
                cloning.destroy("db-clone" + i);
                if (i < COLDS) {
                    clone(booting, "db-cold" + i, cold);
                    booting.destroy("db-cold" + i);
                }
                System.err.printf("snapshot: create %d/%d%n", i + 1, CLONES);
            }
        } finally {
            for (VmDriver driver : new VmDriver[] {cloning, booting}) {
                driver.listInstances().forEach(driver::destroy);
                driver.close();
            }
        }

        // the new user's path: a fresh server (template prepared at start), creates and wakes through the API
        Stats apiLater = new Stats();
        Stats wakeLater = new Stats();
        double serverStartMs;
        double firstCreateMs;
        double firstWakeMs = -1;
        double secondServerFirstCreateMs;
        String key = "pk_bench_" + Long.toHexString(System.nanoTime());
        // an empty templates directory: the first server on a host (or after a guest image change)
        Path templates = work.resolve("templates");
        long serverStart = System.nanoTime();
        try (PalisadeServer server = PalisadeServer.start(serverConfig(work.resolve("s"), templates, image),
                Optional.of(key))) {
            serverStartMs = (System.nanoTime() - serverStart) / 1e6;
            System.err.println("snapshot: fresh server up; first create (waits for the template being prepared)");
            firstCreateMs = apiCreate(server, "first", null);
            for (int i = 0; i < API_CREATES; i++) {
                apiCreate(server, "later" + i, apiLater);
                System.err.printf("snapshot: API create %d/%d%n", i + 1, API_CREATES);
            }
            var created = server.service().create("acct-admin", new io.palisade.api.CreateDatabaseRequest(
                    "wake-bench", "vm", null, null, null, null, null, null, null, null, "never", null, null));
            DatabaseRecord db = created.database();
            String url = proxyUrl(server, db.id());
            query(url, created.password());
            // the steady state: a database whose archive already holds its WAL (a new one's archiver connects at
            // once, before its first client, since no slot keeps its WAL until then; see backup.start-delay)
            BackupBench.awaitArchived(server.service().adminAccess(db.id()), Duration.ofSeconds(120));
            long pid = server.service().stats("acct-admin", db.id()).pid();
            runningRssKiB = io.palisade.host.Processes.rssBytes(pid) / 1024;
            for (int i = 0; i <= WAKES; i++) {
                suspendOnceTheClientIsGone(server, db.id());
                if (i == 0) {
                    suspendedMemoryFileMiB = memoryFilesMiB(work.resolve("s"));
                }
                long start = System.nanoTime();
                query(url, created.password());
                double ms = (System.nanoTime() - start) / 1e6;
                if (i == 0) {
                    firstWakeMs = ms; // the clone's first suspend moved its RAM into its own memory file
                } else {
                    wake.add(ms);
                }
                System.err.printf("snapshot: wake %d/%d %.0f ms%n", i + 1, WAKES + 1, ms);
            }
            server.service().delete("acct-admin", db.id());
        } catch (Exception | Error e) {
            TestingDirectories.deleteRecursively(work);
            throw e;
        }
        // a second server with a fresh data directory on the same host: the template the first built is cloned
        double installStepMs;
        double preparedFirstCreateMs;
        try {
            try (PalisadeServer server = PalisadeServer.start(serverConfig(work.resolve("s2"), templates, image),
                    Optional.of(key))) {
                System.err.println("snapshot: second fresh server up; its first create");
                secondServerFirstCreateMs = apiCreate(server, "second-first", null);
            }
            // a host's first start as bin/palisade serve runs it: prepare-template (the install step), then the server
            Path newHost = work.resolve("templates-new-host");
            System.err.println("snapshot: a new host's start: palisade prepare-template, then the server");
            long prepareStart = System.nanoTime();
            CommandLine palisade = Cli.configure(new CommandLine(new Main()));
            palisade.setOut(new java.io.PrintWriter(System.err, true)); // its progress lines, not the report
            int exit = palisade.execute(prepareArguments(serverSettings(work.resolve("s3"), newHost, image)));
            installStepMs = (System.nanoTime() - prepareStart) / 1e6;
            if (exit != 0) {
                throw new IllegalStateException("palisade prepare-template exited with " + exit);
            }
            try (PalisadeServer server = PalisadeServer.start(serverConfig(work.resolve("s3"), newHost, image),
                    Optional.of(key))) {
                System.err.println("snapshot: server up after prepare-template; its first create");
                preparedFirstCreateMs = apiCreate(server, "prepared-first", null);
            }
        } finally {
            TestingDirectories.deleteRecursively(work);
        }

        System.out.println();
        System.out.println("## vm snapshots: clone create, wake on connect, memory (accelerator " + accelerator + ")");
        System.out.println("machine: " + Machine.describe());
        System.out.println();
        System.out.println("| what | n | p50 ms | p95 ms | max ms |");
        System.out.println("|---|---:|---:|---:|---:|");
        row("create by clone → first query (driver)", clone);
        row("create by cold boot → first query (driver), same run", cold);
        row("new host, serve alone (template prepared in the background): first create via the API, sent as soon "
                + "as the server is up → first query via proxy", Stats.of(firstCreateMs));
        row("new host, as bin/palisade serve starts (prepare-template, then serve): first create via the API, sent "
                + "as soon as the server is up", Stats.of(preparedFirstCreateMs));
        row("fresh server (new data directory) on a host that has the template: first create via the API",
                Stats.of(secondServerFirstCreateMs));
        row("later creates via the API → first query via proxy", apiLater);
        row("wake after the clone's first suspend: connect via proxy → first row", Stats.of(firstWakeMs));
        row("wake after later suspends: connect via proxy → first row", wake);
        System.out.printf("%nfresh server start (API up, template preparation begun): %.0f ms; the install step "
                + "bin/palisade serve runs first on a new host (palisade prepare-template, in process): %.0f ms%n",
                serverStartMs, installStepMs);
        System.out.printf("ratio clone/cold at p50: %.2f×; first API create / later API creates at p50: %.2f× (new "
                + "host, serve alone), %.2f× (new host, prepare-template first), %.2f× (a later fresh server)%n",
                clone.percentile(50) / cold.percentile(50), firstCreateMs / apiLater.percentile(50),
                preparedFirstCreateMs / apiLater.percentile(50), secondServerFirstCreateMs / apiLater.percentile(50));
        System.out.printf("host memory of one database: running QEMU RSS %d MiB; suspended: no process (0 RSS), "
                + "memory files on disk %d MiB (apparent size of the sparse files, template included)%n",
                runningRssKiB / 1024,
                suspendedMemoryFileMiB);
    }

    private static ServerConfig serverConfig(Path dataDir, Path templates, Path image) {
        return ServerConfig.from(serverSettings(dataDir, templates, image));
    }

    private static String[] prepareArguments(Map<String, String> settings) {
        List<String> args = new ArrayList<>(List.of("prepare-template"));
        settings.forEach((name, value) -> args.addAll(List.of("-c", name + "=" + value)));
        return args.toArray(String[]::new);
    }

    private static Map<String, String> serverSettings(Path dataDir, Path templates, Path image) {
        return Map.of(
                "server.data-dir", dataDir.toString(),
                "api.port", "0",
                "proxy.port", "0",
                "vm.network-pool", "10.218.2.0/24",
                "vm.image-dir", image.toString(),
                "vm.templates-dir", templates.toString());
    }

    /** POST /v1/databases (vm) through the service → first query through the proxy; the time in ms. */
    private static double apiCreate(PalisadeServer server, String label, Stats stats) throws Exception {
        long start = System.nanoTime();
        var created = server.service().create("acct-admin", new io.palisade.api.CreateDatabaseRequest(
                label, "vm", null, null, null, null, null, null, null, null, "never", null, null));
        query(proxyUrl(server, created.database().id()), created.password());
        double ms = (System.nanoTime() - start) / 1e6;
        if (stats != null) {
            stats.add(ms);
        }
        server.service().delete("acct-admin", created.database().id());
        return ms;
    }

    private static String proxyUrl(PalisadeServer server, String id) {
        return "jdbc:postgresql://127.0.0.1:" + server.proxyPort().orElseThrow()
                + "/app?sslmode=require&options=endpoint%3D" + id;
    }

    private static void row(String name, Stats stats) {
        System.out.printf("| %s | %d | %.0f | %.0f | %.0f |%n", name, stats.count(), stats.percentile(50),
                stats.percentile(95), stats.max());
    }

    private static void clone(VmDriver driver, String id, Stats stats) throws Exception {
        TenantCredentials credentials = new TenantCredentials("app", "app", "pw-" + Long.toHexString(System.nanoTime()));
        long start = System.nanoTime();
        RunningInstance instance = driver.provision(
                new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app"), credentials, ProgressListener.NONE);
        query("jdbc:postgresql://" + instance.endpoint() + "/app", credentials.password());
        stats.add((System.nanoTime() - start) / 1e6);
    }

    /**
     * Suspends a database whose only client has just closed its connection: the proxy counts it gone once it has seen
     * the close (and reset the backend it parks), a moment after the client's close returned; until then the suspend
     * is refused (409, "open client connection").
     */
    private static void suspendOnceTheClientIsGone(PalisadeServer server, String id) {
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(10))
                .ignoreExceptionsMatching(e -> e instanceof PalisadeException p && p.errorCode() == ErrorCode.CONFLICT)
                .until(() -> {
                    server.service().suspend("acct-admin", id);
                    return true;
                });
    }

    private static void query(String url, String password) throws Exception {
        Properties properties = new Properties();
        properties.setProperty("user", "app");
        properties.setProperty("password", password);
        properties.setProperty("connectTimeout", "60");
        try (Connection c = DriverManager.getConnection(url, properties);
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT 1")) {
            rs.next();
        }
    }

    /** Allocated size of the memory files under the server's vm instances (suspended: the only thing left). */
    private static long memoryFilesMiB(Path root) {
        try (var files = Files.walk(root)) {
            return files.filter(p -> p.getFileName().toString().equals("memory.ram"))
                    .mapToLong(p -> {
                        try {
                            return (Long) Files.getAttribute(p, "unix:size");
                        } catch (java.io.IOException e) {
                            return 0;
                        }
                    })
                    .sum() >> 20;
        } catch (java.io.IOException e) {
            return -1;
        }
    }
}
