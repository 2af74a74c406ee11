package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestVmNetwork {
    @TempDir
    Path dir;

    @Test
    void namesFitTheKernelLimitAndComeFromTheId() {
        String id = "db-" + "x".repeat(40);
        VmNetwork network = VmNetwork.forId(id, "172.31.255.2", "172.31.255.1");
        assertThat(network.hostVeth()).hasSize(15).startsWith("pv-").isEqualTo(VmNetwork.hostVethName(id));
        assertThat(network.namespace()).isEqualTo("pal-" + id);
        assertThat(VmNetwork.hostVethName("db-a")).isNotEqualTo(VmNetwork.hostVethName("db-b"));
    }

    @Test
    void createsTheNatidNamespaceAndRemovesEverything() {
        if (ServiceUser.currentUid() != 0) {
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError("CI runs as root; these tests must not skip there");
            }
            System.err.println("SKIPPING: network namespaces need root");
            Assumptions.abort("needs root");
        }
        NetworkPool pool = new NetworkPool("10.214.250.0/24", dir);
        String id = "db-tnet" + Long.toString(System.nanoTime() % 100_000, 36);
        VmNetwork network = VmNetwork.forId(id, "172.31.255.2", "172.31.255.1");
        NetworkPool.Slot slot = pool.allocate(id);
        try {
            network.create(slot);
            network.create(slot); // idempotent: recreated from scratch
            assertThat(network.namespaceExists()).isTrue();
            assertThat(network.hostVethExists()).isTrue();
            assertThat(ip("addr", "show", network.hostVeth())).contains(slot.hostAddress() + "/30");
            String inside = network.inNamespace(List.of("ip", "addr"), null);
            assertThat(inside).contains(slot.namespaceAddress() + "/30", "172.31.255.1/30", "tap0", "veth0");
            String rules = network.inNamespace(List.of("iptables-save"), null);
            assertThat(rules).contains(":FORWARD DROP", ":INPUT DROP",
                    "--to-destination 172.31.255.2:5432", "--to-source 172.31.255.1");
            // no egress: the namespace has a route to nothing but its own two links
            String routes = network.inNamespace(List.of("ip", "route"), null);
            assertThat(routes).doesNotContain("default");
            assertThat(routes.lines().filter(l -> !l.isBlank())).hasSize(2);
        } finally {
            network.teardown();
            pool.release(id);
        }
        assertThat(network.namespaceExists()).isFalse();
        assertThat(network.hostVethExists()).isFalse();
        network.teardown(); // idempotent
    }

    private static String ip(String... args) {
        List<String> command = new java.util.ArrayList<>(List.of("ip"));
        command.addAll(List.of(args));
        return Processes.check(command, Duration.ofSeconds(10));
    }
}
