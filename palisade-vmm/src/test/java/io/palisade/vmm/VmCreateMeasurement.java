package io.palisade.vmm;

import io.palisade.host.Cgroups;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Measures cold creates of the vm driver (create -> first tenant query), their boot phases, the idle RSS of a VM and
 * the watchdog retries. Not a test: run by hand, e.g.
 * {@code java -cp <test classpath> io.palisade.vmm.VmCreateMeasurement [runs] [image-dir]}.
 */
public final class VmCreateMeasurement {
    private VmCreateMeasurement() {}

    public static void main(String[] args) throws Exception {
        int runs = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        Path image = args.length > 1 ? Path.of(args[1]) : TestingVm.imageDir();
        Path dir = TestingDirectories.newWorkDir("vm-measure");
        VmDriver driver = new VmDriver(VmDriverConfig.defaults(
                        dir, image, TestingDirectories.serviceUser(), Cgroups.detect("palisade"))
                .withNetworkPool("10.214.9.0/24")
                .withHostTscKhz(Long.getLong("palisade.vm.tsc-khz", 0)), dir.resolve(".templates"), false);
        System.out.println(driver.probe());
        List<Long> creates = new ArrayList<>();
        List<Map<String, String>> details = new ArrayList<>();
        try {
            for (int i = 0; i < runs; i++) {
                String id = "db-measure" + i;
                TenantCredentials credentials = new TenantCredentials("app", "app", TestingVm.randomSecret());
                long start = System.nanoTime();
                RunningInstance instance = driver.provision(
                        new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app"), credentials,
                        phase -> System.out.println("  [" + id + "] " + phase));
                try (Connection c = DriverManager.getConnection("jdbc:postgresql://" + instance.endpoint() + "/app",
                                credentials.username(), credentials.password());
                        Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery("SELECT 1")) {
                    rs.next();
                }
                long ms = (System.nanoTime() - start) / 1_000_000;
                creates.add(ms);
                details.add(instance.details());
                System.out.println("create " + i + ": " + ms + " ms " + instance.details());
                if (i == runs - 1) {
                    Thread.sleep(5000);
                    System.out.println("idle RSS of " + id + ": " + driver.stats(id).memoryBytes() / (1024 * 1024)
                            + " MiB; stats " + driver.stats(id));
                    long stopStart = System.nanoTime();
                    driver.stop(id);
                    System.out.println("stop: " + (System.nanoTime() - stopStart) / 1_000_000 + " ms");
                    System.out.println("log tail (stopped): " + driver.logTail(id, 3));
                    System.out.println("serial tail: " + String.join("\n", driver.serialTail(id, 15)));
                }
                driver.destroy(id);
            }
        } finally {
            for (String id : driver.listInstances()) {
                driver.destroy(id);
            }
            TestingDirectories.deleteRecursively(dir);
        }
        List<Long> sorted = creates.stream().sorted().toList();
        System.out.printf("cold create -> first query over %d runs: p50 %d ms, max %d ms, all %s%n", runs,
                sorted.get(sorted.size() / 2), sorted.getLast(), creates);
        for (String key : List.of("volume_copy_ms", "network_ms", "boot_initramfs_ms", "boot_init_ms",
                "boot_postgres_started_ms", "boot_ready_ms", "boot_pg_answers_ms", "credentials_ms", "create_ms",
                "watchdog_retries")) {
            List<Long> values = details.stream().map(d -> Long.parseLong(d.getOrDefault(key, "-1"))).sorted().toList();
            System.out.printf("  %-26s p50 %6d  max %6d%n", key, values.get(values.size() / 2), values.getLast());
        }
        System.out.println("watchdog retries in total: " + driver.watchdogRetries());
    }
}
