package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import io.palisade.spi.PalisadeException;
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
    void aRouteToTheHostOpensOnlyItsOneFlow() {
        VmNetwork network = VmNetwork.forId("db-route", "172.31.255.2", "172.31.255.1");
        NetworkPool.Slot slot = new NetworkPool("10.214.250.0/24", dir).allocate("db-route");
        String base = network.rules(slot);
        assertThat(network.rules(slot, List.of())).isEqualTo(base);
        String open = network.rules(slot, List.of(40001));
        assertThat(open.lines().filter(l -> !base.lines().toList().contains(l))).containsExactlyInAnyOrder(
                "-A FORWARD -i tap0 -o veth0 -p tcp -s 172.31.255.2 -d 10.214.250.1 --dport 40001"
                        + " -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT",
                "-A FORWARD -i veth0 -o tap0 -p tcp -s 10.214.250.1 --sport 40001 -d 172.31.255.2"
                        + " -m conntrack --ctstate ESTABLISHED -j ACCEPT",
                "-A PREROUTING -i tap0 -s 172.31.255.2 -d 172.31.255.1 -p tcp --dport 40001"
                        + " -j DNAT --to-destination 10.214.250.1:40001",
                "-A POSTROUTING -o veth0 -p tcp -s 172.31.255.2 -d 10.214.250.1 --dport 40001"
                        + " -j SNAT --to-source 10.214.250.2");
        assertThat(base.lines().filter(l -> !open.lines().toList().contains(l))).as("nothing of the base removed")
                .isEmpty();
        assertThat(open).as("the policies stay DROP").contains(":INPUT DROP", ":FORWARD DROP");
    }

    @Test
    void createsTheNatidNamespaceAndRemovesEverything() {
        requireRoot();
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
            // each end of the veth link knows the other's MAC, so no ARP runs on a just-created link
            assertThat(ip("neigh", "show", "dev", network.hostVeth()))
                    .contains(slot.namespaceAddress() + " lladdr " + VmNetwork.NS_VETH_MAC, "PERMANENT");
            assertThat(network.inNamespace(List.of("ip", "neigh", "show", "dev", VmNetwork.NS_VETH), null))
                    .contains(slot.hostAddress() + " lladdr " + VmNetwork.HOST_VETH_MAC, "PERMANENT");
            String rules = network.inNamespace(List.of("iptables-save"), null);
            assertThat(rules).contains(":FORWARD DROP", ":INPUT DROP",
                    "--to-destination 172.31.255.2:5432", "--to-source 172.31.255.1");
            // no egress: the namespace has a route to nothing but its own two links
            String routes = network.inNamespace(List.of("ip", "route"), null);
            assertThat(routes).doesNotContain("default");
            assertThat(routes.lines().filter(l -> !l.isBlank())).hasSize(2);
            // a route to the host: iptables takes the rules, and restoring the base rules removes them
            network.applyRules(slot, List.of(40001));
            assertThat(network.inNamespace(List.of("iptables-save"), null))
                    .contains("--to-destination " + slot.hostAddress() + ":40001", "--sport 40001");
            network.applyRules(slot, List.of());
            assertThat(network.inNamespace(List.of("iptables-save"), null)).doesNotContain("40001");
        } finally {
            network.teardown();
            pool.release(id);
        }
        assertThat(network.namespaceExists()).isFalse();
        assertThat(network.hostVethExists()).isFalse();
        network.teardown(); // idempotent
    }

    /**
     * Another palisade sharing the pool (or a namespace one left behind when it died) holds the slot's host address:
     * creating the network fails at once, saying so, instead of a VM that boots unreachable; the other is untouched.
     */
    @Test
    void aSlotWhoseHostAddressIsTakenIsRefusedAtOnce() {
        requireRoot();
        String suffix = Long.toString(System.nanoTime() % 100_000, 36);
        VmNetwork first = VmNetwork.forId("db-tnea" + suffix, "172.31.255.2", "172.31.255.1");
        VmNetwork second = VmNetwork.forId("db-tneb" + suffix, "172.31.255.2", "172.31.255.1");
        NetworkPool.Slot slot = new NetworkPool("10.214.251.0/24", dir.resolve("a")).allocate("db-tnea" + suffix);
        NetworkPool.Slot same = new NetworkPool("10.214.251.0/24", dir.resolve("b")).allocate("db-tneb" + suffix);
        assertThat(same.hostAddress()).isEqualTo(slot.hostAddress());
        try {
            first.create(slot);
            assertThatThrownBy(() -> second.create(same)).isInstanceOf(PalisadeException.class)
                    .hasMessageContaining(slot.hostAddress()).hasMessageContaining(first.hostVeth())
                    .hasMessageContaining("vm.network-pool");
            assertThat(second.namespaceExists()).isFalse();
            assertThat(ip("addr", "show", first.hostVeth())).contains(slot.hostAddress() + "/30");
        } finally {
            second.teardown();
            first.teardown();
        }
    }

    private static void requireRoot() {
        if (ServiceUser.currentUid() != 0) {
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError("CI runs as root; these tests must not skip there");
            }
            System.err.println("SKIPPING: network namespaces need root");
            Assumptions.abort("needs root");
        }
    }

    private static String ip(String... args) {
        List<String> command = new java.util.ArrayList<>(List.of("ip"));
        command.addAll(List.of(args));
        return Processes.check(command, Duration.ofSeconds(10));
    }
}
