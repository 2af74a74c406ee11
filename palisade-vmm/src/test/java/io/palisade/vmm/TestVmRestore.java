package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.host.Processes;
import io.palisade.spi.AdminAccess;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Backups, restore and rename on the vm rung, real QEMU (TCG here). In order, sharing VMs: admin access opens a
 * replication connection; a VM provisioned from the data directory of a stopped VM's volume has its data, the new
 * tenant password and its own management secret (the first-boot trust is gone); one whose directory is configured for
 * recovery is promoted (new timeline, writable) before it is handed out; a stopped and a suspended VM renamed
 * and started keep their data and leave nothing under the old id; a broken directory and a recovery that cannot reach
 * its target fail with a readable message (the latter with PostgreSQL's log) and leave nothing behind.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TestVmRestore {
    private static final int ROWS = 100;

    private VmDriver driver;
    private Path work;
    private final List<String> ids = new ArrayList<>();
    private String suffix;
    private TenantCredentials credentialsA;
    private RunningInstance a;
    private String systemIdA;
    private Path extracted;
    private TenantCredentials credentialsB;

    @BeforeAll
    void provisionSource() throws Exception {
        driver = TestingVm.newDriver("10.214.20.0/24");
        work = TestingDirectories.newWorkDir("vm-restore");
        suffix = Long.toString(System.nanoTime() % 100_000, 36);
        credentialsA = new TenantCredentials("app", "app", TestingVm.randomSecret());
        long start = System.nanoTime();
        a = driver.provision(spec("a"), credentialsA, ProgressListener.NONE);
        System.out.printf("source VM provisioned in %d ms (%s)%n", ms(start),
                CreatePath.from(a.details()).orElseThrow());
        try (Connection c = tenant(a.endpoint(), credentialsA.password()); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE kept (id int PRIMARY KEY, note text NOT NULL)");
            s.execute("INSERT INTO kept SELECT g, 'row ' || g FROM generate_series(1, " + ROWS + ") g");
        }
    }

    @AfterAll
    void destroyAll() {
        if (driver == null) {
            return;
        }
        for (String id : ids) {
            driver.destroy(id);
            TestingVm.assertNothingLeft(driver, id);
        }
        driver.close();
        TestingDirectories.deleteRecursively(driver.config().instancesDir());
        TestingDirectories.deleteRecursively(work);
    }

    @Test
    @Order(1)
    void adminAccessOpensReplicationConnections() throws Exception {
        AdminAccess access = driver.adminAccess(id("a"));
        assertThat(access.transport()).isEqualTo(new AdminAccess.Tcp(a.endpoint()));
        assertThat(access.user()).isEqualTo("palisade_admin");
        String secret = Files.readString(driver.paths(id("a")).managementSecret());
        assertThat(access.password()).contains(secret);
        assertThat(access.toString()).doesNotContain(secret);

        List<String> identify = identifySystem(a.endpoint(), access.user(), secret);
        System.out.println("IDENTIFY_SYSTEM on the source: " + identify);
        systemIdA = identify.getFirst();
        assertThat(systemIdA).matches("\\d{10,}");
        assertThat(identify.get(1)).isEqualTo("1");
        try (Connection admin = driver.managementConnection(id("a")); Statement s = admin.createStatement()) {
            assertThat(show(s, "wal_level")).isEqualTo("logical");
            assertThat(Integer.parseInt(show(s, "max_wal_senders"))).isGreaterThanOrEqualTo(4);
            assertThat(Integer.parseInt(show(s, "max_replication_slots"))).isGreaterThanOrEqualTo(4);
            assertThat(GuestHba.hasReplicationRule(admin, "palisade_admin")).isTrue();
            assertThat(GuestHba.hasReplicationRule(admin, "app")).isFalse();
        }
        // physical replication needs its own pg_hba.conf line ("all" does not match it): the tenant has none
        assertThatThrownBy(() -> identifySystem(a.endpoint(), "app", credentialsA.password()))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("no pg_hba.conf entry for replication connection");
        // the recovery watch reads the data volume's I/O counters (the inserts above wrote WAL)
        RecoveryWatch watch = new RecoveryWatch(driver.paths(id("a")).qmpSocket(), Duration.ofMinutes(5), 0);
        assertThat(watch.poll(System.nanoTime())).isTrue();
        assertThat(watch.writtenBytes()).isPositive();
    }

    @Test
    @Order(2)
    void provisionFromTheDataDirectoryOfAStoppedVm() throws Exception {
        driver.stop(id("a"));
        assertThatThrownBy(() -> driver.adminAccess(id("a")))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("is not running")
                .matches(e -> ((PalisadeException) e).errorCode() == ErrorCode.CONFLICT);
        extracted = work.resolve("a-volume");
        Files.createDirectories(extracted);
        Processes.check(List.of("debugfs", "-c", "-R", "rdump /data " + extracted,
                driver.paths(id("a")).dataVolume().toString()), Duration.ofMinutes(2));
        extracted = extracted.resolve("data");
        assertThat(extracted.resolve("PG_VERSION")).exists();

        Path dir = copyOfExtracted("b");
        credentialsB = new TenantCredentials("app", "app", TestingVm.randomSecret());
        List<String> phases = new CopyOnWriteArrayList<>();
        long start = System.nanoTime();
        RunningInstance b = driver.provisionFrom(spec("b"), credentialsB, dir, phases::add);
        System.out.printf("provisionFrom in %d ms: %s%n  phases: %s%n", ms(start), b.details(), phases);
        assertThat(b.details()).containsEntry(CreatePath.KEY, CreatePath.RESTORE.wireName());
        assertThat(dir).as("the data directory is consumed").doesNotExist();

        assertThat(count(b.endpoint(), credentialsB.password())).isEqualTo(ROWS);
        try (Connection c = tenant(b.endpoint(), credentialsB.password()); Statement s = c.createStatement()) {
            s.execute("INSERT INTO kept VALUES (" + (ROWS + 1) + ", 'written after the restore')");
        }
        assertThatThrownBy(() -> tenant(b.endpoint(), credentialsA.password()))
                .isInstanceOf(SQLException.class)
                .matches(e -> "28P01".equals(((SQLException) e).getSQLState()));

        // this VM's own management secret: not the source's, and the first boot's trust rule is gone
        String secretB = Files.readString(driver.paths(id("b")).managementSecret());
        assertThat(secretB).isNotEqualTo(Files.readString(driver.paths(id("a")).managementSecret()));
        assertThatThrownBy(() -> GuestAdmin.connect(b.endpoint(), "palisade_admin", null))
                .isInstanceOf(SQLException.class)
                .matches(e -> "08004".equals(((SQLException) e).getSQLState()), "the server asks for a password");
        assertThatThrownBy(() -> GuestAdmin.connect(b.endpoint(), "palisade_admin",
                Files.readString(driver.paths(id("a")).managementSecret())))
                .isInstanceOf(SQLException.class)
                .matches(e -> "28P01".equals(((SQLException) e).getSQLState()), "the source's secret is refused");
        try (Connection admin = driver.managementConnection(id("b")); Statement s = admin.createStatement()) {
            assertThat(GuestHba.hostTrustOrBrokenRules(admin)).isZero();
            try (ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_ls_dir('.') f WHERE f LIKE 'pg_hba.conf%' "
                    + "OR f = 'recovery.signal'")) {
                rs.next();
                assertThat(rs.getInt(1)).as("only pg_hba.conf itself").isEqualTo(1);
            }
        }
        AdminAccess access = driver.adminAccess(id("b"));
        assertThat(access.password()).contains(secretB);
        List<String> identify = identifySystem(b.endpoint(), access.user(), access.password().orElseThrow());
        assertThat(identify.getFirst()).as("the same cluster as the source").isEqualTo(systemIdA);
    }

    @Test
    @Order(3)
    void aDirectoryConfiguredForRecoveryIsPromotedBeforeItIsHandedOut() throws Exception {
        // what a restore to "latest" hands over: recovery.signal and the recovery settings in postgresql.auto.conf (no
        // target: a cleanly stopped cluster has no WAL to replay, and PostgreSQL refuses a target it never passes)
        Path dir = copyOfExtracted("g");
        Files.createFile(dir.resolve("recovery.signal"));
        Files.writeString(dir.resolve("postgresql.auto.conf"), """
                restore_command = 'false'
                recovery_target_action = 'promote'
                hot_standby = off
                """, StandardOpenOption.APPEND);
        TenantCredentials credentials = new TenantCredentials("app", "app", TestingVm.randomSecret());
        long start = System.nanoTime();
        RunningInstance g = driver.provisionFrom(spec("g"), credentials, dir, ProgressListener.NONE);
        System.out.printf("provisionFrom with recovery.signal in %d ms: %s%n", ms(start), g.details());
        assertThat(count(g.endpoint(), credentials.password())).isEqualTo(ROWS);
        try (Connection c = tenant(g.endpoint(), credentials.password()); Statement s = c.createStatement()) {
            s.execute("INSERT INTO kept VALUES (" + (ROWS + 1) + ", 'the promoted server is writable')");
        }
        AdminAccess access = driver.adminAccess(id("g"));
        List<String> identify = identifySystem(g.endpoint(), access.user(), access.password().orElseThrow());
        assertThat(identify.getFirst()).isEqualTo(systemIdA);
        assertThat(identify.get(1)).as("a new timeline after the promotion").isEqualTo("2");
        driver.destroy(id("g"));
        TestingVm.assertNothingLeft(driver, id("g"));
    }

    @Test
    @Order(4)
    void renamedVmsStartUnderTheNewIdWithTheirData() throws Exception {
        String b = id("b");
        String c = id("c");
        String secret = Files.readString(driver.paths(b).managementSecret());
        assertThatThrownBy(() -> driver.rename(b, c)).hasMessageContaining("is running");
        driver.stop(b);
        long start = System.nanoTime();
        driver.rename(b, c);
        System.out.printf("rename of a stopped VM in %d ms%n", ms(start));
        TestingVm.assertNothingLeft(driver, b);
        assertThat(driver.networkPool().find(b)).isEmpty();
        RunningInstance started = driver.start(spec("c"), ProgressListener.NONE);
        assertThat(count(started.endpoint(), credentialsB.password())).isEqualTo(ROWS + 1);
        assertThat(Files.readString(driver.paths(c).managementSecret())).isEqualTo(secret);
        try (Connection admin = driver.managementConnection(c)) {
            assertThat(admin.isValid(5)).isTrue();
        }
        assertThat(driver.listInstances()).contains(c).doesNotContain(b);
        // the target must be free
        driver.stop(c);
        assertThatThrownBy(() -> driver.rename(c, id("a"))).hasMessageContaining("already has state");
        driver.start(spec("c"), ProgressListener.NONE);

        // a suspended VM: its saved state is discarded, the new id cold boots from the synced volume
        driver.suspend(spec("c"));
        assertThat(driver.isSuspended(c)).isTrue();
        String d = id("d");
        driver.rename(c, d);
        TestingVm.assertNothingLeft(driver, c);
        assertThat(driver.isSuspended(d)).isFalse();
        RunningInstance resumed = driver.start(spec("d"), ProgressListener.NONE);
        assertThat(resumed.details()).doesNotContainKey(ResumePath.KEY).containsKey("boot_ready_ms");
        assertThat(count(resumed.endpoint(), credentialsB.password())).isEqualTo(ROWS + 1);
    }

    @Test
    @Order(5)
    void aBrokenDirectoryFailsCleanly() throws Exception {
        Path dir = copyOfExtracted("e");
        Files.delete(dir.resolve("global/pg_control"));
        assertThatThrownBy(() -> driver.provisionFrom(spec("e"), credentialsB, dir, ProgressListener.NONE))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("global/pg_control")
                .matches(e -> ((PalisadeException) e).errorCode() == ErrorCode.INVALID_REQUEST);
        assertThat(dir).doesNotExist();
        TestingVm.assertNothingLeft(driver, id("e"));
    }

    @Test
    @Order(6)
    void aRecoveryThatCannotReachItsTargetFailsWithThePostgresLog() throws Exception {
        Path dir = copyOfExtracted("f");
        Files.createFile(dir.resolve("recovery.signal"));
        Files.writeString(dir.resolve("postgresql.auto.conf"), """
                restore_command = 'false'
                recovery_target_lsn = 'FFFFFF/0'
                recovery_target_action = 'promote'
                hot_standby = off
                """, StandardOpenOption.APPEND);
        long start = System.nanoTime();
        Throwable failure = null;
        try {
            driver.provisionFrom(spec("f"), credentialsB, dir, ProgressListener.NONE);
        } catch (PalisadeException e) {
            failure = e;
        }
        System.out.printf("failed restore took %d ms: %s%n", ms(start), failure == null ? null : failure.getMessage());
        assertThat(failure).isNotNull();
        assertThat(failure.getMessage())
                .contains("PostgreSQL exited during recovery")
                .contains("PostgreSQL log tail")
                .contains("recovery ended before configured recovery target was reached");
        assertThat(dir).doesNotExist();
        TestingVm.assertNothingLeft(driver, id("f"));
    }

    private InstanceSpec spec(String name) {
        String id = id(name);
        if (!ids.contains(id)) {
            ids.add(id);
        }
        return new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app");
    }

    private String id(String name) {
        return "db-rst" + name + suffix;
    }

    private Path copyOfExtracted(String name) {
        Path copy = work.resolve("restore-" + name);
        Processes.check(List.of("cp", "-a", extracted.toString(), copy.toString()), Duration.ofMinutes(2));
        return copy;
    }

    /**
     * Runs IDENTIFY_SYSTEM on a physical replication connection (PgJDBC {@code replication=true}, simple query mode),
     * the kind WAL streaming and base backups use; returns systemid, timeline, xlogpos.
     */
    private static List<String> identifySystem(Endpoint endpoint, String user, String password) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", user);
        properties.setProperty("password", password);
        properties.setProperty("replication", "true");
        properties.setProperty("preferQueryMode", "simple");
        properties.setProperty("assumeMinServerVersion", "9.4");
        properties.setProperty("sslmode", "disable");
        properties.setProperty("connectTimeout", "10");
        try (Connection c = DriverManager.getConnection("jdbc:postgresql://" + endpoint + "/postgres", properties);
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("IDENTIFY_SYSTEM")) {
            assertThat(rs.next()).isTrue();
            return List.of(rs.getString("systemid"), rs.getString("timeline"), rs.getString("xlogpos"));
        }
    }

    private static String show(Statement s, String setting) throws SQLException {
        try (ResultSet rs = s.executeQuery("SHOW " + setting)) {
            rs.next();
            return rs.getString(1);
        }
    }

    private static int count(Endpoint endpoint, String password) throws SQLException {
        try (Connection c = tenant(endpoint, password);
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM kept")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static Connection tenant(Endpoint endpoint, String password) throws SQLException {
        return DriverManager.getConnection(
                "jdbc:postgresql://" + endpoint + "/app?connectTimeout=10&socketTimeout=60&sslmode=disable", "app",
                password);
    }

    private static long ms(long startNanos) {
        return (System.nanoTime() - startNanos) / 1_000_000;
    }
}
