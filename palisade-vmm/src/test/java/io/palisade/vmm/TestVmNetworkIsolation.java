package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.time.Duration;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Two tenant VMs side by side: neither can reach the other, the host or anything else; every address in use lives in
 * namespaces palisade created; each guest sees exactly its plan's vCPUs and RAM. Probes run inside guest A with the
 * management role's {@code COPY ... FROM PROGRAM} (busybox nc), only ever towards addresses of our namespaces.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestVmNetworkIsolation {
    private static final String POOL = "10.214.2.0/24";
    private static final Plan PLAN_A = new Plan("custom", 2, 384, 1536, 250, 20);

    private VmDriver driver;
    private final String a = "db-tnetiso-a" + Long.toString(System.nanoTime() % 10_000, 36);
    private final String b = "db-tnetiso-b" + Long.toString(System.nanoTime() % 10_000, 36);
    private RunningInstance instanceA;
    private RunningInstance instanceB;
    private TenantCredentials credentials;

    @BeforeAll
    void startTwoVms() {
        driver = TestingVm.newDriver(POOL);
        credentials = new TenantCredentials("app", "app", TestingVm.randomSecret());
        instanceA = driver.provision(new InstanceSpec(a, PostgresVersion.DEFAULT, PLAN_A, "app", "app"), credentials,
                ProgressListener.NONE);
        instanceB = driver.provision(new InstanceSpec(b, PostgresVersion.DEFAULT, Plan.NANO, "app", "app"), credentials,
                ProgressListener.NONE);
    }

    @AfterAll
    void destroyVms() {
        if (driver != null) {
            driver.destroy(a);
            driver.destroy(b);
            TestingVm.assertNothingLeft(driver, a);
            TestingVm.assertNothingLeft(driver, b);
            driver.close();
            io.palisade.testing.TestingDirectories.deleteRecursively(driver.config().instancesDir());
        }
    }

    /** Exit status of a TCP connect from inside guest A (0 = connected). */
    private int connectFromGuestA(String host, int port) throws Exception {
        try (Connection admin = driver.managementConnection(a)) {
            List<String> out = TestingVm.guestShell(admin,
                    "nc -w 3 " + host + " " + port + " </dev/null >/dev/null 2>&1; echo $?");
            return Integer.parseInt(out.getLast().strip());
        }
    }

    @Test
    void everyAddressIsInsideOurNamespaces() {
        for (var instance : List.of(Map.entry(a, instanceA), Map.entry(b, instanceB))) {
            String host = instance.getValue().endpoint().host();
            assertThat(NetworkPool.parse(POOL).contains(host)).as("endpoint %s in the pool", host).isTrue();
            VmNetwork network = driver.network(instance.getKey());
            assertThat(network.inNamespace(List.of("ip", "-4", "addr"), null))
                    .as("the endpoint address is configured in the VM's own namespace")
                    .contains(host + "/30");
        }
    }

    @Test
    void guestReachesItselfButNotTheOtherVm() throws Exception {
        assertThat(connectFromGuestA("127.0.0.1", 5432)).as("control: guest A reaches its own PostgreSQL").isZero();
        // the host reaches B (that is how the proxy dials it) ...
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(instanceB.endpoint().host(), 5432), 5000);
        }
        // ... guest A does not: neither B's endpoint nor B's host-side address
        assertThat(connectFromGuestA(instanceB.endpoint().host(), 5432)).isNotZero();
        String bNamespace = driver.network(b).inNamespace(List.of("ip", "-4", "-o", "addr", "show", "veth0"), null);
        assertThat(bNamespace).contains(instanceB.endpoint().host());
    }

    @Test
    void guestCannotReachTheHost() throws Exception {
        // a listener on A's host-side veth address: the host itself can connect, guest A cannot
        String hostSide = hostSideAddress(a);
        AtomicInteger accepted = new AtomicInteger();
        try (ServerSocket listener = new ServerSocket(0, 10, InetAddress.getByName(hostSide))) {
            Thread acceptor = Thread.ofVirtual().name("test-host-listener").start(() -> {
                while (!listener.isClosed()) {
                    try (Socket ignored = listener.accept()) {
                        accepted.incrementAndGet();
                    } catch (java.io.IOException e) {
                        return;
                    }
                }
            });
            try (Socket control = new Socket()) {
                control.connect(new InetSocketAddress(hostSide, listener.getLocalPort()), 5000);
            }
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(5)).until(() -> accepted.get() == 1);
            assertThat(connectFromGuestA(hostSide, listener.getLocalPort())).isNotZero();
            assertThat(connectFromGuestA("172.31.255.1", listener.getLocalPort()))
                    .as("nor the namespace behind its gateway").isNotZero();
            assertThat(accepted.get()).as("only the host's own control connection arrived").isEqualTo(1);
            listener.close();
            acceptor.join(java.time.Duration.ofSeconds(5));
        }
    }

    @Test
    void guestHasNoEgress() {
        // proven by state, without sending a packet anywhere outside our namespaces: no route out and nothing forwarded
        VmNetwork network = driver.network(a);
        String routes = network.inNamespace(List.of("ip", "-4", "route"), null);
        assertThat(routes).doesNotContain("default");
        assertThat(routes.lines().filter(l -> !l.isBlank())).hasSize(2);
        String rules = network.inNamespace(List.of("iptables-save"), null);
        assertThat(rules).contains(":FORWARD DROP");
        assertThat(rules.lines().filter(l -> l.startsWith("-A FORWARD")))
                .as("only the DNATed PostgreSQL port goes in, only replies come out")
                .hasSize(2)
                .allMatch(l -> l.contains("--dport 5432") || l.contains("RELATED,ESTABLISHED"));
    }

    @Test
    void guestSeesExactlyItsPlan() throws Exception {
        assertGuestResources(a, 2, 384);
        assertGuestResources(b, 1, 256);
        // and the QEMU process is capped by its cgroup
        var group = driver.config().cgroups().find(driver.cgroupName(a));
        if (driver.config().cgroups().mode() != io.palisade.host.Cgroups.Mode.NONE) {
            assertThat(group).isPresent();
            long pid = driver.pid(a).orElseThrow();
            for (var dir : group.get().dirs()) {
                assertThat(java.nio.file.Files.readString(dir.resolve("cgroup.procs"))).contains(Long.toString(pid));
            }
        }
    }

    private void assertGuestResources(String id, int cpus, int memoryMb) throws Exception {
        try (Connection admin = driver.managementConnection(id)) {
            List<String> cpu = TestingVm.guestShell(admin, "grep -c ^processor /proc/cpuinfo");
            assertThat(Integer.parseInt(cpu.getFirst().strip())).as("vCPUs of %s", id).isEqualTo(cpus);
            String memTotal = TestingVm.guestShell(admin, "grep MemTotal /proc/meminfo").getFirst();
            long kb = Long.parseLong(memTotal.replaceAll("[^0-9]", ""));
            assertThat(kb).as("MemTotal of %s", id).isBetween((memoryMb - 96) * 1024L, memoryMb * 1024L);
        }
    }

    @Test
    void volumeHasThePlanSizeAndIoCaps() throws Exception {
        try (Connection admin = driver.managementConnection(a)) {
            String df = TestingVm.guestShell(admin, "df -k /var/lib/pg | tail -n 1").getFirst().strip();
            long kb = Long.parseLong(df.split("\\s+")[1]);
            assertThat(kb).as("data file system grown to the plan's disk").isBetween(1400L * 1024, 1536L * 1024);
        }
        assertThat(driver.ioLimits(a)).containsEntry("iops-total", 250L).containsEntry("bps-total", 20_000_000L);
        driver.setIoLimits(a, 100, 0);
        assertThat(driver.ioLimits(a)).containsEntry("iops-total", 100L).containsEntry("bps-total", 0L);
    }

    @Test
    void managementSecretIsRotatedAndPrivate() throws Exception {
        Path secret = driver.config().instancesDir().resolve(a).resolve("mgmt-secret");
        assertThat(Files.getPosixFilePermissions(secret)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
        GuestImage image = GuestImage.load(driver.config().imageDir());
        assertThatThrownBy(() -> DriverManager.getConnection(
                        "jdbc:postgresql://" + instanceA.endpoint() + "/postgres?sslmode=disable", image.adminRole(),
                        image.adminSecret()).close())
                .as("the image's template secret no longer opens a provisioned VM")
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("password authentication failed");
        try (Connection admin = driver.managementConnection(a);
                Statement s = admin.createStatement();
                ResultSet rs = s.executeQuery(
                        "SELECT rolname, rolsuper, rolpassword FROM pg_authid"
                                + " WHERE rolname IN ('app', 'palisade_admin') ORDER BY 1")) {
            while (rs.next()) {
                assertThat(rs.getString(3)).as("stored as a SCRAM verifier").startsWith("SCRAM-SHA-256$4096:");
            }
        }
        for (String line : driver.logTail(a, 200)) {
            assertThat(line).doesNotContain(Files.readString(secret).strip());
        }
    }

    /**
     * Tenant A (the aggressor) spins both its vCPUs and runs a sort far larger than its RAM; tenant B's queries keep
     * answering, A's guest kernel ends the hog (its postmaster survives, see guest/README.md) and A serves again.
     */
    @Test
    void aNoisyTenantHurtsOnlyItself() throws Exception {
        long qemuPidA = driver.pid(a).orElseThrow();
        List<Thread> aggressors = new java.util.ArrayList<>();
        AtomicInteger hogOutcome = new AtomicInteger(); // 1 = failed as expected, 2 = completed (should not happen)
        for (int i = 0; i < 2; i++) {
            aggressors.add(Thread.ofPlatform().name("test-aggressor-cpu-" + i).start(() -> tenantQuery(instanceA,
                    "SET statement_timeout = '15s'; SELECT count(*) FROM generate_series(1, 1000000000)")));
        }
        aggressors.add(Thread.ofPlatform().name("test-aggressor-ram").start(() -> {
            long start = System.nanoTime();
            try (Connection c = DriverManager.getConnection(
                            "jdbc:postgresql://" + instanceA.endpoint() + "/app?sslmode=disable&socketTimeout=90",
                            credentials.username(), credentials.password());
                    Statement s = c.createStatement()) {
                s.execute("SET statement_timeout = '40s'; SET work_mem = '4GB'; "
                        + "SELECT count(*) FROM (SELECT g FROM generate_series(1, 30000000) g ORDER BY g DESC) s");
                hogOutcome.set(2);
            } catch (SQLException e) {
                hogOutcome.set(1);
                System.out.printf("aggressor's memory hog ended after %d ms: %s%n",
                        (System.nanoTime() - start) / 1_000_000, e.getMessage());
            }
        }));
        // the victim: one short query every 200 ms for ~12 s; every one must answer
        long worstMs = 0;
        int answered = 0;
        long until = System.nanoTime() + Duration.ofSeconds(12).toNanos();
        try (Connection victim = DriverManager.getConnection(
                "jdbc:postgresql://" + instanceB.endpoint() + "/app?sslmode=disable&socketTimeout=20",
                credentials.username(), credentials.password());
                Statement s = victim.createStatement()) {
            while (System.nanoTime() < until) {
                long start = System.nanoTime();
                try (ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_class")) {
                    rs.next();
                }
                worstMs = Math.max(worstMs, (System.nanoTime() - start) / 1_000_000);
                answered++;
                Thread.sleep(200);
            }
        }
        for (Thread aggressor : aggressors) {
            aggressor.join(Duration.ofSeconds(90));
            assertThat(aggressor.isAlive()).isFalse();
        }
        System.out.printf("noisy neighbour: victim answered %d queries, worst %d ms; aggressor's hog outcome %d%n",
                answered, worstMs, hogOutcome.get());
        assertThat(answered).isGreaterThan(10);
        assertThat(worstMs).as("victim latency while its neighbour burns CPU and RAM").isLessThan(5_000);
        assertThat(hogOutcome.get()).as("a sort far beyond the tenant's RAM cannot succeed").isEqualTo(1);
        // the aggressor hurt only itself: same VM (not restarted), its PostgreSQL answers again
        assertThat(driver.pid(a)).contains(qemuPidA);
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(500))
                .until(() -> tenantQuery(instanceA, "SELECT 1"));
    }

    /** Runs SQL as the tenant; true if it completed, false on any error. */
    private boolean tenantQuery(RunningInstance instance, String sql) {
        try (Connection c = DriverManager.getConnection(
                        "jdbc:postgresql://" + instance.endpoint() + "/app?sslmode=disable&socketTimeout=90"
                                + "&connectTimeout=10",
                        credentials.username(), credentials.password());
                Statement s = c.createStatement()) {
            s.execute(sql);
            return true;
        } catch (SQLException e) {
            return false;
        }
    }

    private String hostSideAddress(String id) {
        String host = driver.endpoint(id).host();
        int last = Integer.parseInt(host.substring(host.lastIndexOf('.') + 1));
        return host.substring(0, host.lastIndexOf('.') + 1) + (last - 1);
    }
}
