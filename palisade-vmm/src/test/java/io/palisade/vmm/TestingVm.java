package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.palisade.host.Cgroups;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/** Shared pieces of the vm driver's integration tests. Stateless. */
final class TestingVm {
    private TestingVm() {}

    static String randomSecret() {
        byte[] bytes = new byte[18];
        new java.security.SecureRandom().nextBytes(bytes);
        return java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    /** The guest image: {@code <repo>/.cache/guest/current}, or the system property {@code palisade.vm.image-dir}. */
    static Path imageDir() {
        String override = System.getProperty("palisade.vm.image-dir");
        if (override != null) {
            return Path.of(override);
        }
        return TestingDirectories.repoDir().resolve(".cache/guest/current");
    }

    /**
     * Fails (CI) or skips with a printed reason (elsewhere) when the guest image or root privileges are missing; never
     * skips silently.
     */
    static void requireImageAndRoot() {
        String problem = null;
        if (!Files.isRegularFile(imageDir().resolve("manifest.json"))) {
            problem = "no guest image at " + imageDir() + "; build it first with: guest/build.sh";
        } else if (io.palisade.host.ServiceUser.currentUid() != 0) {
            problem = "the vm driver tests need root (network namespaces, taps, cgroups)";
        }
        if (problem == null) {
            return;
        }
        if ("true".equals(System.getenv("CI"))) {
            fail(problem);
        }
        System.err.println("SKIPPING vm driver tests: " + problem);
        Assumptions.abort(problem);
    }

    /** A driver on a fresh instances dir and its own slice of addresses (test classes must not share a pool). */
    static VmDriver newDriver(String networkPool) {
        requireImageAndRoot();
        Path dir = TestingDirectories.newWorkDir("vm");
        VmDriverConfig config = VmDriverConfig.defaults(
                        dir, imageDir(), TestingDirectories.serviceUser(), Cgroups.detect("palisade"))
                .withNetworkPool(networkPool)
                .withBootTimeout(java.time.Duration.ofSeconds(120));
        return new VmDriver(config);
    }

    static void assertNothingLeft(VmDriver driver, String id) {
        assertThat(qemuPidsFor(id)).as("QEMU processes of %s", id).isEmpty();
        assertThat(driver.config().instancesDir().resolve(id)).as("instance dir").doesNotExist();
        VmNetwork network = driver.network(id);
        assertThat(Path.of("/run/netns", network.namespace())).as("netns").doesNotExist();
        assertThat(Path.of("/sys/class/net", network.hostVeth())).as("host veth").doesNotExist();
        assertThat(driver.config().cgroups().find(driver.cgroupName(id))).as("cgroup").isEmpty();
        assertThat(driver.listInstances()).doesNotContain(id);
        assertThat(driver.pid(id)).isEmpty();
        assertThat(driver.tenantUsers().existing()).as("OS users").doesNotContain(driver.tenantUsers().nameOf(id));
    }

    /** Every QEMU on the host whose name is this id's, whichever driver started it. */
    static List<Long> qemuPidsFor(String id) {
        List<Long> pids = new ArrayList<>();
        ProcessHandle.allProcesses().forEach(handle -> {
            try {
                byte[] bytes = Files.readAllBytes(Path.of("/proc", Long.toString(handle.pid()), "cmdline"));
                List<String> args = List.of(new String(bytes, java.nio.charset.StandardCharsets.UTF_8).split("\0"));
                if (!args.isEmpty() && args.getFirst().contains("qemu") && args.contains(VmNetwork.namespaceName(id))) {
                    pids.add(handle.pid());
                }
            } catch (java.io.IOException ignored) {
                // process gone
            }
        });
        return pids;
    }

    /** Runs a shell command inside the guest as its postgres user (needs a superuser connection) and returns stdout. */
    static List<String> guestShell(Connection admin, String command) throws SQLException {
        try (Statement s = admin.createStatement()) {
            s.execute("CREATE TEMP TABLE IF NOT EXISTS guest_out (line text)");
            s.execute("TRUNCATE guest_out");
            s.execute("COPY guest_out FROM PROGRAM '" + command.replace("'", "''") + "'");
            List<String> lines = new ArrayList<>();
            try (ResultSet rs = s.executeQuery("SELECT line FROM guest_out")) {
                while (rs.next()) {
                    lines.add(rs.getString(1));
                }
            }
            return lines;
        }
    }
}
