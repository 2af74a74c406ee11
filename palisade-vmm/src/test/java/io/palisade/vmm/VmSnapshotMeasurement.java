package io.palisade.vmm;

import io.palisade.host.Cgroups;
import io.palisade.host.Processes;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Measures, in one run: clone creates vs cold creates (create -> first tenant query), resumes (resume call -> first
 * row), and the RSS of a running vs a suspended VM. Not a test: run by hand, e.g.
 * {@code java -cp <test classpath> io.palisade.vmm.VmSnapshotMeasurement [clones] [colds] [resumes]}.
 */
public final class VmSnapshotMeasurement {
    private VmSnapshotMeasurement() {}

    public static void main(String[] args) throws Exception {
        int clones = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        int colds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int resumes = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        Path dir = TestingDirectories.newWorkDir("vm-snap-measure");
        VmDriverConfig clonesConfig = VmDriverConfig.defaults(dir.resolve("clones"), TestingVm.imageDir(),
                        TestingDirectories.serviceUser(), Cgroups.detect("palisade"))
                .withNetworkPool("10.214.12.0/25");
        VmDriverConfig coldConfig = VmDriverConfig.defaults(dir.resolve("cold"), TestingVm.imageDir(),
                        TestingDirectories.serviceUser(), Cgroups.detect("palisade"))
                .withNetworkPool("10.214.12.128/25");
        VmDriver cloning = new VmDriver(clonesConfig);
        VmDriver cold = new VmDriver(coldConfig, dir.resolve("cold/.templates"), false);
        System.out.println(cloning.probe());
        List<Long> cloneMs = new ArrayList<>();
        List<Long> coldMs = new ArrayList<>();
        List<Long> resumeMs = new ArrayList<>();
        List<Long> restoreReadyMs = new ArrayList<>();
        try {
            long templateStart = System.nanoTime();
            create(cloning, "db-warm", false);
            cloning.destroy("db-warm");
            System.out.printf("template build + first clone: %d ms%n", (System.nanoTime() - templateStart) / 1_000_000);
            // interleave clone and cold creates so both see the same machine load
            for (int i = 0; i < Math.max(clones, colds); i++) {
                if (i < clones) {
                    cloneMs.add(create(cloning, "db-clone" + i, true));
                    if (i < clones - 1) {
                        cloning.destroy("db-clone" + i);
                    }
                }
                if (i < colds) {
                    coldMs.add(create(cold, "db-cold" + i, true));
                    cold.destroy("db-cold" + i);
                }
            }
            String id = "db-clone" + (clones - 1);
            InstanceSpec spec = spec(id);
            TenantCredentials credentials = new TenantCredentials("app", "app", "measure-" + TestingVm.randomSecret());
            cloning.setPassword(id, "app", credentials.password());
            // the first suspend of a clone saves its RAM (a private mapping of the template) into the state: once
            long first = System.nanoTime();
            cloning.suspend(spec);
            long firstSuspend = (System.nanoTime() - first) / 1_000_000;
            first = System.nanoTime();
            RunningInstance instance = cloning.resume(spec, ProgressListener.NONE);
            query(instance, credentials);
            System.out.printf("first suspend of a clone (RAM moved into its own memory file) %d ms, its resume -> first row %d ms%n",
                    firstSuspend, (System.nanoTime() - first) / 1_000_000);
            long rssRunning = 0;
            for (int i = 0; i < resumes; i++) {
                Thread.sleep(500);
                rssRunning = cloning.stats(id).memoryBytes();
                long suspendStart = System.nanoTime();
                cloning.suspend(spec);
                long suspendMs = (System.nanoTime() - suspendStart) / 1_000_000;
                long start = System.nanoTime();
                instance = cloning.resume(spec, ProgressListener.NONE);
                query(instance, credentials);
                long ms = (System.nanoTime() - start) / 1_000_000;
                resumeMs.add(ms);
                restoreReadyMs.add(Long.parseLong(instance.details().getOrDefault("restore_ready_ms", "-1")));
                System.out.printf("suspend %d ms, resume -> first row %d ms %s%n", suspendMs, ms, instance.details());
            }
            cloning.suspend(spec);
            Path memory = clonesConfig.instancesDir().resolve(id).resolve("memory.ram");
            System.out.printf("RSS running (QEMU VmRSS incl. mapped memory file): %d MiB; suspended: no process; "
                            + "memory file %s; %s%n", rssRunning >> 20,
                    Processes.run(List.of("du", "-h", memory.toString()), Duration.ofSeconds(5), null).output().strip(),
                    Processes.run(List.of("fincore", memory.toString()), Duration.ofSeconds(5), null).output()
                            .strip().replace('\n', ' '));
        } finally {
            for (String id : cloning.listInstances()) {
                cloning.destroy(id);
            }
            for (String id : cold.listInstances()) {
                cold.destroy(id);
            }
            TestingDirectories.deleteRecursively(dir);
        }
        print("clone create -> first query", cloneMs);
        print("cold create -> first query", coldMs);
        print("resume -> first row", resumeMs);
        print("resume: QEMU start -> ready (restore_ready_by)", restoreReadyMs);
    }

    private static InstanceSpec spec(String id) {
        return new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app");
    }

    private static long create(VmDriver driver, String id, boolean print) throws Exception {
        TenantCredentials credentials = new TenantCredentials("app", "app", TestingVm.randomSecret());
        long start = System.nanoTime();
        RunningInstance instance = driver.provision(spec(id), credentials, ProgressListener.NONE);
        query(instance, credentials);
        long ms = (System.nanoTime() - start) / 1_000_000;
        if (print) {
            Map<String, String> d = instance.details();
            System.out.printf("%s: %s %d ms (credentials %s ms, restore->answers %s ms)%n", id, d.get(CreatePath.KEY),
                    ms, d.get("credentials_ms"), d.getOrDefault("restore_pg_answers_ms",
                            d.get("boot_pg_answers_ms")));
        }
        return ms;
    }

    private static void query(RunningInstance instance, TenantCredentials credentials) throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:postgresql://" + instance.endpoint()
                        + "/app?sslmode=disable", credentials.username(), credentials.password());
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT now()")) {
            rs.next();
        }
    }

    private static void print(String what, List<Long> values) {
        if (values.isEmpty()) {
            return;
        }
        List<Long> sorted = values.stream().sorted().toList();
        System.out.printf("%s over %d: p50 %d ms, p95 %d ms, max %d ms, all %s%n", what, values.size(),
                sorted.get(sorted.size() / 2), sorted.get(Math.min(sorted.size() - 1,
                        (int) Math.ceil(sorted.size() * 0.95) - 1)), sorted.getLast(), values);
    }
}
