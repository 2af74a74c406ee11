package io.palisade.bench;

import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import io.palisade.server.PalisadeServer;
import io.palisade.server.ServerConfig;
import io.palisade.spi.InstanceSpec;
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
import java.util.Map;
import java.util.Optional;
import java.util.Properties;

/**
 * Issue 7's benchmarks: create by cloning a template snapshot vs a cold boot (same run, interleaved), wake of a
 * suspended database measured from the client's connect through the proxy to the first row, and host memory of a
 * running vs a suspended database.
 */
final class SnapshotBench {
    private static final int CLONES = 20;
    private static final int COLDS = 5;
    private static final int WAKES = 10;

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

        String key = "pk_bench_" + Long.toHexString(System.nanoTime());
        try (PalisadeServer server = PalisadeServer.start(ServerConfig.from(Map.of(
                        "server.data-dir", work.resolve("s").toString(),
                        "api.port", "0",
                        "proxy.port", "0",
                        "vm.network-pool", "10.218.2.0/24",
                        "vm.image-dir", image.toString())),
                Optional.of(key))) {
            var created = server.service().create("acct-admin", new io.palisade.api.CreateDatabaseRequest(
                    "wake-bench", "vm", null, null, null, null, null, null, null, null, "never", null, null));
            DatabaseRecord db = created.database();
            String url = "jdbc:postgresql://127.0.0.1:" + server.proxyPort().orElseThrow() + "/app?sslmode=require&options=endpoint%3D"
                    + db.id();
            query(url, created.password());
            long pid = server.service().stats("acct-admin", db.id()).pid();
            runningRssKiB = io.palisade.host.Processes.rssBytes(pid) / 1024;
            for (int i = 0; i < WAKES; i++) {
                server.service().suspend("acct-admin", db.id());
                if (i == 0) {
                    suspendedMemoryFileMiB = memoryFilesMiB(work.resolve("s"));
                }
                long start = System.nanoTime();
                query(url, created.password());
                wake.add((System.nanoTime() - start) / 1e6);
                System.err.printf("snapshot: wake %d/%d %.0f ms%n", i + 1, WAKES, (System.nanoTime() - start) / 1e6);
            }
            server.service().delete("acct-admin", db.id());
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
        row("wake: client connect via proxy → first row (suspended db)", wake);
        System.out.printf("%nratio clone/cold at p50: %.2f×%n", clone.percentile(50) / cold.percentile(50));
        System.out.printf("host memory of one database: running QEMU RSS %d MiB; suspended: no process (0 RSS), "
                + "memory file on disk %d MiB (page cache only)%n", runningRssKiB / 1024, suspendedMemoryFileMiB);
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
