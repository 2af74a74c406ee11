package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.palisade.host.PgProbe;
import io.palisade.host.Processes;
import io.palisade.pgwire.PgConnection;
import io.palisade.pgwire.PgServerException;
import io.palisade.pgwire.PgTarget;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Create by cloning a template snapshot, and suspend/resume, on real QEMU (TCG here). Two clones are shared by the
 * tests of the class (in order): uniqueness, suspend/resume cycles with data and clock checks, SIGKILL of QEMU during
 * a suspend and during a resume, a deleted and a corrupt saved state.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TestVmSnapshots {
    private VmDriver driver;
    private String idA;
    private String idB;
    private InstanceSpec specA;
    private InstanceSpec specB;
    private TenantCredentials credentialsA;
    private TenantCredentials credentialsB;
    private RunningInstance a;
    private RunningInstance b;

    @BeforeAll
    void createClones() {
        driver = TestingVm.newDriver("10.214.9.0/24");
        String suffix = Long.toString(System.nanoTime() % 100_000, 36);
        idA = "db-snapa" + suffix;
        idB = "db-snapb" + suffix;
        specA = new InstanceSpec(idA, PostgresVersion.DEFAULT, Plan.NANO, "app", "app");
        specB = new InstanceSpec(idB, PostgresVersion.DEFAULT, Plan.NANO, "app", "app");
        credentialsA = new TenantCredentials("app", "app", TestingVm.randomSecret());
        credentialsB = new TenantCredentials("app", "app", TestingVm.randomSecret());
        a = driver.provision(specA, credentialsA, ProgressListener.NONE);
        b = driver.provision(specB, credentialsB, ProgressListener.NONE);
        System.out.println("clone A: " + a.details());
        System.out.println("clone B: " + b.details());
    }

    @AfterAll
    void destroyAll() {
        if (driver == null) {
            return;
        }
        for (String id : new String[] {idA, idB}) {
            driver.destroy(id);
            TestingVm.assertNothingLeft(driver, id);
        }
        driver.close();
        TestingDirectories.deleteRecursively(driver.config().instancesDir());
    }

    @Test
    @Order(1)
    void clonesAreUniqueAndDoNotShareSecrets() throws Exception {
        assertThat(a.details()).containsEntry(CreatePath.KEY, CreatePath.CLONE.wireName());
        assertThat(b.details()).containsEntry(CreatePath.KEY, CreatePath.CLONE.wireName());
        assertThat(a.details()).containsEntry(ClockSync.KEY, ClockSync.SERIAL.wireName());
        assertThat(Math.abs(clockOffset(a, credentialsA))).as("clone's clock offset (ms)").isLessThan(1200);
        // cancel keys (the postmaster's) and SCRAM nonces (each backend's) come from the servers' strong random
        // sources: clones restored from one template must not hand out the same ones
        Set<Integer> keysA = new HashSet<>();
        Set<Integer> keysB = new HashSet<>();
        Set<String> nonces = new HashSet<>();
        for (int i = 0; i < 4; i++) {
            try (PgConnection la = login(a, credentialsA.password());
                    PgConnection lb = login(b, credentialsB.password())) {
                keysA.add(la.cancelKey());
                keysB.add(lb.cancelKey());
                assertThat(nonces.add(la.scramServerNonce().orElseThrow())).as("SCRAM server nonce repeated").isTrue();
                assertThat(nonces.add(lb.scramServerNonce().orElseThrow())).as("SCRAM server nonce repeated").isTrue();
            }
        }
        assertThat(keysA).hasSize(4).doesNotContainAnyElementsOf(keysB);
        assertThat(keysB).hasSize(4);
        // each QEMU runs as an OS user of its own: not root, not the service user, not the other VM's
        if (driver.config().serviceUser().dropsPrivileges()) {
            int uidA = processUid(driver.pid(idA).orElseThrow());
            int uidB = processUid(driver.pid(idB).orElseThrow());
            assertThat(uidA).isNotEqualTo(uidB).isNotEqualTo(driver.config().serviceUser().uid()).isNotZero();
            assertThat(uidB).isNotEqualTo(driver.config().serviceUser().uid()).isNotZero();
        }
        // neither accepts the other's password
        assertThatThrownBy(() -> login(a, credentialsB.password()).close())
                .isInstanceOfSatisfying(PgServerException.class, e -> assertThat(e.sqlState()).isEqualTo("28P01"));
        assertThatThrownBy(() -> login(b, credentialsA.password()).close())
                .isInstanceOfSatisfying(PgServerException.class, e -> assertThat(e.sqlState()).isEqualTo("28P01"));
        // the management secret was rotated per clone
        assertThat(Files.readString(driver.config().instancesDir().resolve(idA).resolve("mgmt-secret")))
                .isNotEqualTo(Files.readString(driver.config().instancesDir().resolve(idB).resolve("mgmt-secret")));
        // and the guests' kernels do not share their random state any more
        try (Connection ma = driver.managementConnection(idA); Connection mb = driver.managementConnection(idB)) {
            String ra = TestingVm.guestShell(ma, "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'").getFirst();
            String rb = TestingVm.guestShell(mb, "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'").getFirst();
            assertThat(ra).isNotEqualTo(rb);
        }
    }

    /**
     * Three cycles. In the third, the guest's postmaster is stopped (SIGSTOP) for 4 s of guest time just before the
     * suspend: the suspend's probe gets no answer, so the resume does not take the guest's acknowledgement for
     * readiness and probes until PostgreSQL answers again (after the guest's 4 s are up).
     */
    @Test
    @Order(2)
    void suspendResumeCyclesKeepDataAndFixTheClock() throws Exception {
        try (Connection c = connect(a, credentialsA); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE kept (cycle int, n int)");
            s.execute("INSERT INTO kept SELECT 0, g FROM generate_series(1, 100) g");
        }
        for (int cycle = 1; cycle <= 3; cycle++) {
            long pid = driver.pid(idA).orElseThrow();
            long rss = driver.stats(idA).memoryBytes();
            boolean postmasterStopped = cycle == 3;
            if (postmasterStopped) {
                stopPostmaster(a, "4"); // before the suspend's probe
            }
            driver.suspend(specA);
            assertThat(Processes.awaitExit(pid, Duration.ofSeconds(1))).isTrue();
            assertThat(driver.isSuspended(idA)).isTrue();
            assertThat(driver.isRunning(idA)).isFalse();
            assertThat(driver.listInstances()).contains(idA);
            assertThat(driver.stats(idA).running()).isFalse();
            assertThat(TestingVm.qemuPidsFor(idA)).isEmpty();
            InstancePaths saved = InstancePaths.of(driver.config().instancesDir(), idA);
            // every suspend, the clone's first too, leaves device state only: its RAM is in its own memory file
            assertThat(Files.size(saved.stateFile())).as("saved state bytes, cycle " + cycle).isLessThan(1 << 20);
            assertThat(SavedStateMode.read(saved.stateModeFile()))
                    .isEqualTo(new SavedStateMode(false, !postmasterStopped));
            assertThat(saved.memoryFile()).exists();
            assertThat(saved.fullStateFile()).doesNotExist();
            if (cycle == 2) {
                Thread.sleep(11_000); // the guest clock stands still while saved
            }
            a = driver.resume(specA, ProgressListener.NONE);
            System.out.printf("cycle %d: running RSS %d MiB, resume %s%n", cycle, rss >> 20, a.details());
            assertThat(a.details()).containsEntry(ResumePath.KEY, ResumePath.RESTORE.wireName());
            assertThat(a.details()).containsEntry(ClockSync.KEY, ClockSync.SERIAL.wireName());
            // a guest saved while PostgreSQL answered is ready by its acknowledgement, and the login right after works
            assertThat(RestoreReadiness.from(a.details()))
                    .contains(postmasterStopped ? RestoreReadiness.PROBE : RestoreReadiness.GUEST_ACK);
            if (postmasterStopped) {
                // the resume waited for PostgreSQL: the stop's 4 s of guest time less the suspend's 1 s probe
                long waitedMs = Long.parseLong(a.details().get("restore_ready_ms"))
                        - Long.parseLong(a.details().get("restore_cont_ms"));
                assertThat(waitedMs).as("ms from cont to ready").isGreaterThan(1500);
            }
            assertThat(driver.isSuspended(idA)).isFalse();
            assertThat(driver.isRunning(idA)).isTrue();
            // resumed at most once: no state is left to resume again
            InstancePaths paths = InstancePaths.of(driver.config().instancesDir(), idA);
            assertThat(paths.stateFile()).doesNotExist();
            assertThat(paths.consumedStateFile()).doesNotExist();
            try (Connection c = connect(a, credentialsA); Statement s = c.createStatement()) {
                s.execute("INSERT INTO kept SELECT " + cycle + ", g FROM generate_series(1, 100) g");
                try (ResultSet rs = s.executeQuery("SELECT count(*), count(DISTINCT cycle) FROM kept")) {
                    rs.next();
                    assertThat(rs.getInt(1)).isEqualTo(100 * (cycle + 1));
                    assertThat(rs.getInt(2)).isEqualTo(cycle + 1);
                }
                long before = System.currentTimeMillis();
                try (ResultSet rs = s.executeQuery("SELECT (extract(epoch FROM now()) * 1000)::int8")) {
                    rs.next();
                    long offset = rs.getLong(1) - (before + System.currentTimeMillis()) / 2;
                    System.out.printf("cycle %d: guest clock offset %d ms%n", cycle, offset);
                    assertThat(Math.abs(offset)).as("guest clock offset (ms) after resume").isLessThan(1200);
                }
            }
            if (cycle == 2) {
                Thread.sleep(1500); // the exact step lands at the next whole host second
                long fine = clockOffset(a, credentialsA);
                System.out.printf("cycle %d: guest clock offset 1.5 s later %d ms%n", cycle, fine);
                assertThat(Math.abs(fine)).isLessThan(500);
            }
        }
        // resume of a running instance is a no-op; a second suspend of a suspended one too
        assertThat(driver.resume(specA, ProgressListener.NONE).endpoint()).isEqualTo(a.endpoint());
    }

    @Test
    @Order(3)
    void sigkillDuringSuspendLosesNothing() throws Exception {
        insert(b, credentialsB, "CREATE TABLE kept AS SELECT g AS n FROM generate_series(1, 50) g");
        long pid = driver.pid(idB).orElseThrow();
        // B's first suspend saves its RAM into the state, then moves it into its own memory file: slow enough to hit
        CompletableFuture<Void> suspend = CompletableFuture.runAsync(() -> driver.suspend(specB));
        Thread.sleep(150);
        Processes.signal(pid, "KILL");
        assertThat(Processes.awaitExit(pid, Duration.ofSeconds(10))).isTrue();
        try {
            suspend.join();
            System.out.println("the suspend finished before the SIGKILL");
        } catch (RuntimeException e) {
            System.out.println("suspend failed as expected: " + e.getCause().getMessage());
        }
        b = driver.resume(specB, ProgressListener.NONE);
        System.out.println("resume after a killed suspend: " + b.details());
        assertThat(count(b, credentialsB)).isEqualTo(50);
    }

    @Test
    @Order(4)
    void sigkillDuringResumeFallsBackToAColdBoot() throws Exception {
        insert(b, credentialsB, "INSERT INTO kept SELECT g FROM generate_series(51, 80) g");
        driver.suspend(specB);
        assertThat(driver.isSuspended(idB)).isTrue();
        CompletableFuture<RunningInstance> resume =
                CompletableFuture.supplyAsync(() -> driver.resume(specB, ProgressListener.NONE));
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        Long killed = null;
        while (killed == null && System.nanoTime() < deadline) {
            var pids = TestingVm.qemuPidsFor(idB);
            if (!pids.isEmpty()) {
                killed = pids.getFirst();
                Processes.signal(killed, "KILL");
            }
        }
        assertThat(killed).as("a QEMU to kill").isNotNull();
        b = resume.get();
        System.out.println("resume with a SIGKILL in the middle: " + b.details());
        assertThat(b.details()).containsEntry(ResumePath.KEY, ResumePath.COLD.wireName());
        assertThat(count(b, credentialsB)).isEqualTo(80);
        assertThat(driver.isSuspended(idB)).isFalse();
    }

    @Test
    @Order(5)
    void missingOrCorruptStateColdBootsWithDataIntact() throws Exception {
        insert(b, credentialsB, "INSERT INTO kept SELECT g FROM generate_series(81, 90) g");
        driver.suspend(specB);
        InstancePaths paths = InstancePaths.of(driver.config().instancesDir(), idB);
        Files.delete(paths.stateFile());
        assertThat(driver.isSuspended(idB)).isFalse();
        b = driver.resume(specB, ProgressListener.NONE);
        assertThat(b.details()).containsEntry(ResumePath.KEY, ResumePath.COLD.wireName());
        assertThat(count(b, credentialsB)).isEqualTo(90);

        insert(b, credentialsB, "INSERT INTO kept SELECT g FROM generate_series(91, 95) g");
        driver.suspend(specB);
        Files.write(paths.stateFile(), "not a QEMU migration stream".getBytes());
        b = driver.resume(specB, ProgressListener.NONE);
        System.out.println("resume of a corrupt state: " + b.details());
        assertThat(b.details()).containsEntry(ResumePath.KEY, ResumePath.COLD.wireName());
        assertThat(count(b, credentialsB)).isEqualTo(95);
        // suspending a stopped instance is refused with a clear message
        driver.stop(idB);
        assertThatThrownBy(() -> driver.suspend(specB)).hasMessageContaining("not running");
        b = driver.start(specB, ProgressListener.NONE);
        assertThat(count(b, credentialsB)).isEqualTo(95);
    }

    /**
     * A state marked as saved while PostgreSQL answered whose PostgreSQL does not (its postmaster stopped for two
     * minutes of guest time, the mark written by hand): the resume takes the guest's acknowledgement, and the check
     * after it ends that QEMU once PostgreSQL has not answered for its patience; a start then cold boots with the data.
     */
    @Test
    @Order(6)
    void aResumedGuestWhosePostgresNeverAnswersIsEndedForARestart() throws Exception {
        stopPostmaster(a, "120");
        driver.suspend(specA);
        InstancePaths paths = InstancePaths.of(driver.config().instancesDir(), idA);
        assertThat(SavedStateMode.read(paths.stateModeFile())).isEqualTo(new SavedStateMode(false, false));
        new SavedStateMode(false, true).write(paths.stateModeFile());
        a = driver.resume(specA, ProgressListener.NONE);
        assertThat(RestoreReadiness.from(a.details())).contains(RestoreReadiness.GUEST_ACK);
        long pid = driver.pid(idA).orElseThrow();
        assertThat(PgProbe.answers(a.endpoint(), Duration.ofSeconds(1))).isFalse();
        await().atMost(ResumeCheck.FIRST_DELAY.plus(ResumeCheck.PATIENCE).plusSeconds(15))
                .pollInterval(Duration.ofMillis(500)).until(() -> !ProcessHandle.of(pid).map(ProcessHandle::isAlive)
                        .orElse(false));
        assertThat(driver.isRunning(idA)).isFalse();
        a = driver.start(specA, ProgressListener.NONE);
        assertThat(count(a, credentialsA)).isEqualTo(400);
    }

    /**
     * Stops the instance's postmaster (SIGSTOP) for {@code seconds} of guest time, from a shell in the guest, and
     * returns once it is stopped; the management connection's backend, forked before, still answers meanwhile.
     */
    private void stopPostmaster(RunningInstance instance, String seconds) throws Exception {
        try (Connection m = driver.managementConnection(instance.id()); Statement s = m.createStatement();
                ResultSet rs = s.executeQuery("SHOW data_directory")) {
            rs.next();
            String pidFile = rs.getString(1) + "/postmaster.pid";
            String postmaster = TestingVm.guestShell(m, "P=$(head -1 " + pidFile + "); setsid sh -c"
                    + " \"kill -STOP $P; sleep " + seconds + "; kill -CONT $P\" </dev/null >/dev/null 2>&1 & echo $P")
                    .getFirst();
            assertThat(postmaster).containsOnlyDigits();
            await().atMost(Duration.ofSeconds(2)).pollInterval(Duration.ofMillis(20)).until(() -> TestingVm
                    .guestShell(m, "cut -d' ' -f3 /proc/" + postmaster + "/stat").equals(List.of("T")));
        }
    }

    /** Guest clock minus host clock in ms, read as the tenant. */
    private static long clockOffset(RunningInstance instance, TenantCredentials credentials) throws SQLException {
        try (Connection c = connect(instance, credentials); Statement s = c.createStatement()) {
            long before = System.currentTimeMillis();
            try (ResultSet rs = s.executeQuery("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8")) {
                rs.next();
                return rs.getLong(1) - (before + System.currentTimeMillis()) / 2;
            }
        }
    }

    private static void insert(RunningInstance instance, TenantCredentials credentials, String sql)
            throws SQLException {
        try (Connection c = connect(instance, credentials); Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    private static int count(RunningInstance instance, TenantCredentials credentials) throws SQLException {
        try (Connection c = connect(instance, credentials);
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM kept")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /** Logs in as the tenant over SCRAM with {@code password}. */
    private static PgConnection login(RunningInstance instance, String password) {
        return PgConnection.open(new PgTarget.Tcp(instance.endpoint().host(), instance.endpoint().port()), "app",
                Optional.of(password), Map.of("database", "app"), Duration.ofSeconds(10));
    }

    private static Connection connect(RunningInstance instance, TenantCredentials credentials) throws SQLException {
        return DriverManager.getConnection(
                "jdbc:postgresql://" + instance.endpoint() + "/app?connectTimeout=10&socketTimeout=30&sslmode=disable",
                credentials.username(), credentials.password());
    }

    private static int processUid(long pid) throws java.io.IOException {
        return Files.readAllLines(java.nio.file.Path.of("/proc", Long.toString(pid), "status")).stream()
                .filter(line -> line.startsWith("Uid:")).map(line -> Integer.parseInt(line.split("\\s+")[2]))
                .findFirst().orElseThrow();
    }
}
