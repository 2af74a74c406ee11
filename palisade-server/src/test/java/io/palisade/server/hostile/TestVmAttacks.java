package io.palisade.server.hostile;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.agent.AdminConnection;
import io.palisade.host.Processes;
import io.palisade.server.hostile.HostileTenants.Tenant;
import io.palisade.spi.TenantPlace;
import io.palisade.vmm.VmNetwork;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A shell inside a {@code vm} tenant's guest (what a PostgreSQL escape gives: the guest's postgres user, run here with
 * the management role's {@code COPY … FROM PROGRAM}) tries to reach what it must not: the host's API, proxy and
 * metadata store on the host's link address and on the host's own address, a listener the test opens on every host
 * address (IPv4 and IPv6), another tenant's VM, and every IPv6 neighbour its link answers for. None connects. The way
 * out to the internet is checked by state, without sending a packet off the machine: the VM's namespace has no default
 * route (IPv4 or IPv6) and forwards nothing. And finding 3 of the security review on the rung it is about: a wrong
 * password does not wake a suspended VM. Runs only where the vm rung is usable (always in CI).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestVmAttacks {
    private HostileTenants tenants;
    private Tenant attacker;
    private Tenant neighbour;

    @BeforeAll
    void open() {
        tenants = HostileTenants.open("vm", Map.of("vm.network-pool", "10.216.0.0/16"));
        attacker = tenants.create(tenants.ownerKey(), "guest-escape", "vm");
        neighbour = tenants.create(tenants.otherKey(), "guest-neighbour", "vm");
    }

    @AfterAll
    void close() {
        if (tenants != null) {
            tenants.close();
        }
    }

    @Test
    void aGuestShellReachesNothingOutsideItsVm() throws Exception {
        String hostSide = hostSideAddress(attacker);
        int apiPort = tenants.palisade().server().apiPort();
        int proxyPort = tenants.proxyPort();
        int storePort = storePort();
        String neighbourHost = tenants.palisade().server().service().resolve(neighbour.id()).join().orElseThrow()
                .endpoint().host();
        AtomicInteger accepted = new AtomicInteger();
        try (ServerSocket listener = new ServerSocket(0, 50, InetAddress.getByName("::"))) {
            Thread acceptor = Thread.ofVirtual().name("host-listener").start(() -> {
                while (!listener.isClosed()) {
                    try (Socket ignored = listener.accept()) {
                        accepted.incrementAndGet();
                    } catch (java.io.IOException e) {
                        return;
                    }
                }
            });
            Map<String, String> targets = new LinkedHashMap<>();
            for (String address : hostAddresses(hostSide)) {
                targets.put("the API on " + address, address + " " + apiPort);
                targets.put("the proxy on " + address, address + " " + proxyPort);
                targets.put("the metadata store on " + address, address + " " + storePort);
                targets.put("the test listener on " + address, address + " " + listener.getLocalPort());
            }
            targets.put("the neighbour's VM", neighbourHost + " 5432");
            try (Connection guest = managementConnection(attacker)) {
                System.out.println("guest IPv4/IPv6 state:\n" + String.join("\n", shell(guest,
                        "id; ip -4 route 2>&1; ip -6 addr 2>&1; ip -6 route 2>&1; true")));
                String link = shell(guest, "ls /sys/class/net").stream().filter(n -> !n.equals("lo")).findFirst()
                        .orElse("eth0");
                for (String neighbourV6 : shell(guest, "ping6 -c 2 -w 3 ff02::1%" + link + " 2>/dev/null"
                        + " | sed -n 's/.*from \\([0-9a-f:]*\\).*/\\1/p' | sort -u; true")) {
                    if (!neighbourV6.isBlank()) {
                        String address = neighbourV6.strip().replaceAll(":$", "") + "%" + link;
                        targets.put("the test listener on IPv6 neighbour " + address,
                                address + " " + listener.getLocalPort());
                        targets.put("the API on IPv6 neighbour " + address, address + " " + apiPort);
                        targets.put("the metadata store on IPv6 neighbour " + address, address + " " + storePort);
                    }
                }
                List<String> control = shell(guest, "nc -w 3 127.0.0.1 5432 </dev/null >/dev/null 2>&1; echo $?");
                assertThat(control).as("control: the probe reaches the guest's own PostgreSQL").last()
                        .isEqualTo("0");
                List<String> reached = new ArrayList<>();
                for (var target : targets.entrySet()) {
                    List<String> out = shell(guest, "nc -w 3 " + target.getValue()
                            + " </dev/null >/dev/null 2>&1; echo $?");
                    System.out.printf("guest -> %s (%s): exit %s%n", target.getKey(), target.getValue(), out);
                    if (!out.isEmpty() && out.getLast().strip().equals("0")) {
                        reached.add(target.getKey() + " (" + target.getValue() + ")");
                    }
                }
                assertThat(reached).as("what a shell in the guest reached").isEmpty();
            }
            listener.close();
            acceptor.join(Duration.ofSeconds(5));
            assertThat(accepted.get()).as("connections from the guest to a host listener on every address").isZero();
        }
        String namespace = VmNetwork.namespaceName(attacker.id());
        for (String family : List.of("-4", "-6")) {
            Processes.Result routes = Processes.run(List.of("ip", "netns", "exec", namespace, "ip", family, "route"),
                    Duration.ofSeconds(10), null);
            assertThat(routes.output()).as("IPv%s routes of the VM's namespace", family.substring(1))
                    .doesNotContain("default");
        }
        Processes.Result forwarding = Processes.run(List.of("ip", "netns", "exec", namespace, "sysctl", "-n",
                "net.ipv6.conf.all.forwarding"), Duration.ofSeconds(10), null);
        assertThat(forwarding.output().strip()).as("IPv6 forwarding in the VM's namespace").isIn("0", "");
        HostileTenants.assertAnswers(neighbour);
        HostileTenants.assertAnswers(attacker);
    }

    /** Finding 3: wrong passwords on the proxy and {@code /sql} leave a suspended VM suspended; the owner wakes it. */
    @Test
    void aWrongPasswordDoesNotWakeASuspendedVm() throws Exception {
        var palisade = tenants.palisade();
        org.awaitility.Awaitility.await("suspend " + neighbour).atMost(Duration.ofMinutes(2))
                .pollInterval(Duration.ofSeconds(1)).until(() -> palisade.request("POST",
                        "/v1/databases/" + neighbour.id() + "/suspend", null, neighbour.key()).status() == 200);
        assertThat(tenants.describe(neighbour).path("status").asText()).isEqualTo("suspended");
        for (int i = 0; i < 3; i++) {
            assertThat(HostileTenants.loginError(neighbour, neighbour.username(), "wrong-" + i, neighbour.database()))
                    .isEqualTo("28P01");
        }
        var http = java.net.http.HttpClient.newHttpClient();
        var sql = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(palisade.apiUrl() + "/sql"))
                .header("Neon-Connection-String", neighbour.serverlessUrl(neighbour.username(), "wrong"))
                .POST(java.net.http.HttpRequest.BodyPublishers.ofString("{\"query\":\"select 1\",\"params\":[]}"))
                .build(), java.net.http.HttpResponse.BodyHandlers.ofString());
        assertThat(sql.statusCode()).as(sql.body()).isNotEqualTo(200);
        Thread.sleep(2_000);
        assertThat(tenants.describe(neighbour).path("status").asText()).as("after wrong passwords")
                .isEqualTo("suspended");
        HostileTenants.assertAnswers(neighbour); // the owner's login wakes it
        assertThat(tenants.describe(neighbour).path("status").asText()).isEqualTo("running");
    }

    /** The guest's gateway (the host end of its link) and the host's own non-loopback addresses. */
    private static List<String> hostAddresses(String hostSide) throws Exception {
        List<String> addresses = new ArrayList<>(List.of(hostSide));
        java.net.NetworkInterface.networkInterfaces().filter(i -> {
            try {
                return i.isUp() && !i.isLoopback() && !i.getName().startsWith("pv") && !i.getName().startsWith("veth");
            } catch (java.net.SocketException e) {
                return false;
            }
        }).flatMap(java.net.NetworkInterface::inetAddresses).filter(a -> !a.isLinkLocalAddress())
                .map(a -> a.getHostAddress().replaceAll("%.*", "")).forEach(addresses::add);
        return addresses;
    }

    /** The host end of the VM's /30 link: its endpoint's address minus one (as the driver lays it out). */
    private String hostSideAddress(Tenant tenant) {
        String host = tenants.palisade().server().service().resolve(tenant.id()).join().orElseThrow().endpoint()
                .host();
        int last = Integer.parseInt(host.substring(host.lastIndexOf('.') + 1));
        return host.substring(0, host.lastIndexOf('.') + 1) + (last - 1);
    }

    private int storePort() throws Exception {
        try (var files = java.nio.file.Files.walk(tenants.palisade().dataDir().resolve("store"), 3)) {
            var pid = files.filter(p -> p.getFileName().toString().equals("postmaster.pid")).findFirst().orElseThrow();
            return Integer.parseInt(java.nio.file.Files.readAllLines(pid).get(3).strip());
        }
    }

    private Connection managementConnection(Tenant tenant) {
        TenantPlace place = tenants.palisade().server().service().tenantPlace(tenant.id());
        return AdminConnection.open(place.admin(), place.database());
    }

    /** A shell command inside the guest as its postgres user; its stdout lines. */
    private static List<String> shell(Connection admin, String command) throws SQLException {
        try (Statement s = admin.createStatement()) {
            s.execute("create temp table if not exists guest_out (line text)");
            s.execute("truncate guest_out");
            s.execute("copy guest_out from program '" + command.replace("'", "''") + "'");
            List<String> lines = new ArrayList<>();
            try (ResultSet rs = s.executeQuery("select line from guest_out")) {
                while (rs.next()) {
                    lines.add(rs.getString(1));
                }
            }
            return lines;
        }
    }
}
