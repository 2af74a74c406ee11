package io.palisade.vmm;

import io.palisade.host.Cgroups;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Measures clone creates only: provision time, create -> first tenant query, and the p50 of each timing in the
 * details (restore phases, management login, tenant, credentials). The template is built (and one clone made) before
 * the measured runs. Not a test: run by hand, e.g.
 * {@code java -cp <test classpath> io.palisade.vmm.VmCloneMeasurement [clones] [role] [database]}.
 */
public final class VmCloneMeasurement {
    private static final List<String> KEYS = List.of("volume_copy_ms", "network_ms", "restore_qmp_ms",
            "restore_state_ms", "restore_cont_ms", "restore_clock_ms", "restore_ready_ms", "admin_login_ms",
            "tenant_ms", "credentials_ms", "create_ms");

    private VmCloneMeasurement() {}

    public static void main(String[] args) throws Exception {
        int clones = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        String role = args.length > 1 ? args[1] : "app";
        String database = args.length > 2 ? args[2] : "app";
        Path dir = TestingDirectories.newWorkDir("vm-clone-measure");
        VmDriver driver = new VmDriver(VmDriverConfig.defaults(dir, TestingVm.imageDir(),
                        TestingDirectories.serviceUser(), Cgroups.detect("palisade"))
                .withNetworkPool("10.214.12.0/25"));
        System.out.println(driver.probe());
        List<Long> provisionMs = new ArrayList<>();
        List<Long> firstQueryMs = new ArrayList<>();
        List<Map<String, String>> details = new ArrayList<>();
        try {
            long templateStart = System.nanoTime();
            create(driver, "db-warm", role, database);
            driver.destroy("db-warm");
            System.out.printf("template build + first clone: %d ms%n", (System.nanoTime() - templateStart) / 1_000_000);
            for (int i = 0; i < clones; i++) {
                String id = "db-clone" + i;
                Run run = create(driver, id, role, database);
                provisionMs.add(run.provisionMs());
                firstQueryMs.add(run.firstQueryMs());
                details.add(run.details());
                System.out.printf("%s: provision %d ms, -> first query %d ms %s%n", id, run.provisionMs(),
                        run.firstQueryMs(), run.details());
                driver.destroy(id);
            }
        } finally {
            for (String id : driver.listInstances()) {
                driver.destroy(id);
            }
            driver.close();
            TestingDirectories.deleteRecursively(dir);
        }
        print("clone provision", provisionMs);
        print("clone create -> first tenant query", firstQueryMs);
        for (String key : KEYS) {
            List<Long> values = details.stream().filter(d -> d.containsKey(key))
                    .map(d -> Long.parseLong(d.get(key))).toList();
            print("  " + key, values);
        }
    }

    private record Run(long provisionMs, long firstQueryMs, Map<String, String> details) {}

    private static Run create(VmDriver driver, String id, String role, String database) throws Exception {
        TenantCredentials credentials = new TenantCredentials(role, database, TestingVm.randomSecret());
        long start = System.nanoTime();
        RunningInstance instance = driver.provision(
                new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, role, database), credentials,
                ProgressListener.NONE);
        long provision = (System.nanoTime() - start) / 1_000_000;
        try (Connection c = DriverManager.getConnection("jdbc:postgresql://" + instance.endpoint() + "/" + database
                        + "?sslmode=disable", credentials.username(), credentials.password());
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT now()")) {
            rs.next();
        }
        return new Run(provision, (System.nanoTime() - start) / 1_000_000, instance.details());
    }

    private static void print(String what, List<Long> values) {
        if (values.isEmpty()) {
            return;
        }
        List<Long> sorted = values.stream().sorted().toList();
        System.out.printf("%-40s n=%d p50 %5d ms, max %5d ms, all %s%n", what, values.size(),
                sorted.get(sorted.size() / 2), sorted.getLast(), values);
    }
}
