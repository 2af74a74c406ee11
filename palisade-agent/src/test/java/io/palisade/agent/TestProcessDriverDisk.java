package io.palisade.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.host.Cgroups;
import io.palisade.host.LoopVolumes;
import io.palisade.host.Processes;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The process rung's capped disk: a tenant that fills its volume gets 53100 from its own server while a neighbour keeps
 * writing and the host's disk stays out of reach; the volume survives stop/start and a new driver (a restart of
 * palisade), and delete leaves no mount and no image. Real PostgreSQL servers, real loop mounts.
 */
class TestProcessDriverDisk {
    private static final long MIB = 1024L * 1024;
    private static final Plan SMALL_DISK = new Plan("small-disk", 1, 256, 64, 0, 0);

    private Path workDir;
    private Cgroups cgroups;
    private ProcessDriver driver;

    @BeforeEach
    void setUp() {
        workDir = TestingDirectories.newWorkDir("process-disk");
        cgroups = Cgroups.detect("palisade-test");
    }

    @AfterEach
    void tearDown() throws IOException {
        if (driver != null) {
            driver.listInstances().forEach(driver::destroy);
            driver.close();
        }
        assertThat(mountsUnder(workDir)).as("mounts left under %s", workDir).isEmpty();
        TestingDirectories.deleteRecursively(workDir);
    }

    private ProcessDriver newDriver(LoopVolumes volumes) {
        return new ProcessDriver(new ProcessDriverConfig(workDir.resolve("instances"), TestingDirectories.cacheDir(),
                TestingDirectories.serviceUser(), cgroups, Duration.ofSeconds(60)), volumes);
    }

    /** A driver with capped volumes, or a skip with the reason where this host cannot loop-mount (never on CI). */
    private ProcessDriver cappedDriver() {
        LoopVolumes volumes = LoopVolumes.probe(workDir);
        if (!volumes.supported()) {
            String reason = "capped volumes are not available here: " + volumes.reason();
            System.out.println("SKIP TestProcessDriverDisk: " + reason);
            assertThat(System.getenv("CI")).as(reason).isNotEqualTo("true");
            Assumptions.abort(reason);
        }
        return newDriver(volumes);
    }

    @Test
    void fullVolumeIs53100ForThatTenantOnly() throws Exception {
        driver = cappedDriver();
        assertThat(driver.probe().reason()).contains("disk_enforced: true");
        TenantCredentials fillerCredentials = credentials();
        TenantCredentials neighbourCredentials = credentials();
        InstanceSpec filler = spec(SMALL_DISK);
        InstanceSpec neighbour = spec(Plan.NANO);
        RunningInstance fillerInstance = driver.provision(filler, fillerCredentials, ProgressListener.NONE);
        RunningInstance neighbourInstance = driver.provision(neighbour, neighbourCredentials, ProgressListener.NONE);
        Path image = driver.instanceDir(filler.id()).resolve(ProcessInstanceFiles.IMAGE);
        Path data = driver.instanceDir(filler.id()).resolve("data");
        Path walImage = driver.instanceDir(filler.id()).resolve(ProcessInstanceFiles.WAL_IMAGE);
        assertThat(LoopVolumes.isMounted(data)).isTrue();
        assertThat(LoopVolumes.isMounted(driver.instanceDir(filler.id()).resolve("wal"))).isTrue();
        assertThat(Files.readSymbolicLink(data.resolve("pg_wal"))).isEqualTo(Path.of("../wal"));
        assertThat(Files.size(image)).isEqualTo(SMALL_DISK.diskMb() * MIB);
        assertModes(filler.id());
        long hostFreeBefore = Files.getFileStore(workDir).getUsableSpace();

        String sqlState = null;
        int batches = 0;
        try (Connection c = connect(fillerInstance, fillerCredentials); Statement s = c.createStatement()) {
            s.execute("create table fill (v text)");
            s.execute("create table marker (v text)");
            s.execute("insert into marker values ('kept')");
            // ~1 KiB rows that TOAST leaves uncompressed (md5 text compresses poorly inline); ~10 MiB a batch
            for (; batches < 40 && sqlState == null; batches++) {
                try {
                    s.execute("insert into fill select repeat(md5(g::text), 30) from generate_series(1, 10000) g");
                } catch (SQLException e) {
                    sqlState = e.getSQLState();
                    System.out.printf("disk full after %d batches: %s %s%n", batches, sqlState, e.getMessage());
                }
            }
            assertThat(sqlState).as("the tenant's own server reports disk full").isEqualTo("53100");
        }
        // the server keeps its data through its full disk; a checkpoint that met the full disk may have restarted it
        // (PostgreSQL stops with PANIC when it cannot write its own small state files), so this reconnects
        assertThat(awaitCount(fillerInstance, fillerCredentials, "select count(*) from marker")).isEqualTo(1);
        // the neighbour still writes, and the host's disk gave at most the tenant's cap
        try (Connection n = connect(neighbourInstance, neighbourCredentials); Statement ns = n.createStatement()) {
            ns.execute("create table t as select g, repeat(md5(g::text), 30) v from generate_series(1, 20000) g");
            try (ResultSet rs = ns.executeQuery("select count(*) from t")) {
                rs.next();
                assertThat(rs.getLong(1)).isEqualTo(20000);
            }
        }
        assertThat(allocatedBytes(image)).as("blocks the image holds on the host").isLessThanOrEqualTo(
                SMALL_DISK.diskMb() * MIB);
        assertThat(allocatedBytes(walImage)).as("blocks the WAL image holds on the host").isLessThanOrEqualTo(
                ProcessInstanceFiles.walMb(SMALL_DISK.diskMb()) * MIB);
        long hostUsed = hostFreeBefore - Files.getFileStore(workDir).getUsableSpace();
        System.out.printf("host free space went down by %d MiB while the tenant filled its %d MiB disk%n",
                hostUsed / MIB, SMALL_DISK.diskMb());
        // other processes share this disk; the bound is the tenant's two volumes plus the neighbour's, with slack
        long bound = SMALL_DISK.diskMb() + ProcessInstanceFiles.walMb(SMALL_DISK.diskMb()) + 200;
        assertThat(hostUsed).isLessThan(bound * MIB);

        // freeing space lets the tenant write again (reconnecting, as above); at 100% PostgreSQL itself needs a few pages for TRUNCATE (a new file with a metapage) or VACUUM FULL (a
        // copy); DROP TABLE only unlinks; its WAL goes to the WAL volume, which a full data volume leaves untouched
        freeSpace(fillerInstance, fillerCredentials, List.of("drop table fill", "create table fill (v text)"));
        try (Connection c = connect(fillerInstance, fillerCredentials); Statement s = c.createStatement()) {
            s.execute("insert into fill select repeat(md5(g::text), 30) from generate_series(1, 5000) g");
            try (ResultSet rs = s.executeQuery("select count(*) from fill")) {
                rs.next();
                assertThat(rs.getLong(1)).isEqualTo(5000);
            }
        }
        System.out.println("server restarts while full: " + driver.logTail(filler.id(), 1000).stream()
                .filter(line -> line.contains("PANIC")).toList());

        // stop unmounts; start mounts again with the data in place
        driver.stop(filler.id());
        assertThat(LoopVolumes.isMounted(data)).isFalse();
        fillerInstance = driver.start(filler, ProgressListener.NONE);
        assertThat(LoopVolumes.isMounted(data)).isTrue();
        assertThat(count(fillerInstance, fillerCredentials, "select count(*) from fill")).isEqualTo(5000);

        // a new driver on the same directories (palisade restarted, or the host rebooted: nothing mounted)
        driver.close();
        assertThat(LoopVolumes.isMounted(data)).isFalse();
        driver = newDriver(LoopVolumes.probe(workDir));
        fillerInstance = driver.start(filler, ProgressListener.NONE);
        assertThat(count(fillerInstance, fillerCredentials, "select count(*) from marker")).isEqualTo(1);
        assertModes(filler.id());

        // delete: no mount, no image, no directory
        driver.destroy(filler.id());
        assertThat(LoopVolumes.isMounted(data)).isFalse();
        assertThat(mountsUnder(driver.instanceDir(filler.id()))).isEmpty();
        assertThat(image).doesNotExist();
        assertThat(walImage).doesNotExist();
        assertThat(driver.instanceDir(filler.id())).doesNotExist();
        driver.destroy(neighbour.id());
    }

    @Test
    void restoredDataGoesOntoItsOwnVolumeAndMustFit() throws Exception {
        driver = cappedDriver();
        Path template = driver.template(PostgresVersion.DEFAULT);
        Path staged = workDir.resolve("staged");
        Processes.check(List.of("cp", "-a", template.toString(), staged.toString()), Duration.ofMinutes(1));
        InstanceSpec spec = spec(Plan.NANO);
        TenantCredentials credentials = credentials();
        RunningInstance instance = driver.provisionFrom(spec, credentials, staged, ProgressListener.NONE);
        assertThat(staged).doesNotExist();
        assertThat(LoopVolumes.isMounted(driver.instanceDir(spec.id()).resolve("data"))).isTrue();
        assertThat(driver.instanceDir(spec.id()).resolve(ProcessInstanceFiles.IMAGE)).exists();
        assertModes(spec.id());
        assertThat(count(instance, credentials, "select 1")).isEqualTo(1);
        driver.destroy(spec.id());

        // a restore larger than the plan's disk fails up front, and leaves nothing
        Path big = workDir.resolve("big");
        Processes.check(List.of("cp", "-a", template.toString(), big.toString()), Duration.ofMinutes(1));
        try (var file = new RandomAccessFile(big.resolve("ballast").toFile(), "rw")) {
            file.setLength(40 * MIB);
        }
        InstanceSpec tooSmall = spec(new Plan("tiny", 1, 256, 64, 0, 0));
        assertThatThrownBy(() -> driver.provisionFrom(tooSmall, credentials, big, ProgressListener.NONE))
                .isInstanceOfSatisfying(PalisadeException.class, e -> {
                    assertThat(e.errorCode()).isEqualTo(ErrorCode.INVALID_REQUEST);
                    assertThat(e.getMessage()).contains("disk_mb 64");
                });
        assertThat(driver.instanceDir(tooSmall.id())).doesNotExist();
        assertThat(mountsUnder(workDir)).isEmpty();
    }

    @Test
    void withoutLoopDevicesTheDriverSaysTheDiskIsNotEnforced() throws Exception {
        driver = newDriver(LoopVolumes.unsupported("this test forbids loop mounts"));
        assertThat(driver.probe().reason()).contains("disk_enforced: false").contains("this test forbids loop mounts");
        InstanceSpec spec = spec(Plan.NANO);
        TenantCredentials credentials = credentials();
        RunningInstance instance = driver.provision(spec, credentials, ProgressListener.NONE);
        assertThat(driver.instanceDir(spec.id()).resolve(ProcessInstanceFiles.IMAGE)).doesNotExist();
        assertThat(LoopVolumes.isMounted(driver.instanceDir(spec.id()).resolve("data"))).isFalse();
        assertModes(spec.id());
        assertThat(count(instance, credentials, "select 1")).isEqualTo(1);
        driver.destroy(spec.id());
        assertThat(driver.instanceDir(spec.id())).doesNotExist();
    }

    /** Data 0700 and log 0600, both the tenant server's user (not root when palisade is root); the image root 0600. */
    private void assertModes(String id) throws IOException {
        Path dir = driver.instanceDir(id);
        int serverUid = TestingDirectories.serviceUser().uid();
        Path data = dir.resolve("data");
        Path log = dir.resolve("postgres.log");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(data))).isEqualTo("rwx------");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(log))).isEqualTo("rw-------");
        assertThat(Files.getAttribute(data, "unix:uid")).isEqualTo(serverUid);
        assertThat(Files.getAttribute(log, "unix:uid")).isEqualTo(serverUid);
        assertThat(Files.getPosixFilePermissions(dir).toString()).doesNotContain("OTHERS_READ", "GROUP_WRITE",
                "OTHERS_WRITE");
        if (TestingDirectories.serviceUser().dropsPrivileges()) {
            assertThat(serverUid).isNotZero();
            assertThat(Files.getAttribute(dir, "unix:uid")).as("the instance directory stays root's").isEqualTo(0);
        }
        Path image = dir.resolve(ProcessInstanceFiles.IMAGE);
        if (Files.exists(image)) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(image))).isEqualTo("rw-------");
            assertThat(Files.getAttribute(image, "unix:uid")).isEqualTo(0);
        }
    }

    /** A count, reconnecting while the server restarts (bounded); prints the server's log tail if it never answers. */
    private long awaitCount(RunningInstance instance, TenantCredentials credentials, String sql)
            throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (true) {
            try {
                return count(instance, credentials, sql);
            } catch (SQLException e) {
                System.out.println("waiting for the server: " + e.getSQLState() + " " + e.getMessage());
                if (System.nanoTime() > deadline) {
                    driver.logTail(instance.id(), 60).forEach(System.out::println);
                    throw new AssertionError("the tenant's server did not answer within 90 s: " + e.getMessage(), e);
                }
                Thread.sleep(1000);
            }
        }
    }

    /** Runs the statements in one session, reconnecting while the server restarts (bounded). */
    private void freeSpace(RunningInstance instance, TenantCredentials credentials, List<String> statements)
            throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (true) {
            try (Connection c = connect(instance, credentials); Statement s = c.createStatement()) {
                for (String statement : statements) {
                    s.execute(statement);
                }
                return;
            } catch (SQLException e) {
                System.out.println("freeing space: " + e.getSQLState() + " " + e.getMessage());
                if (System.nanoTime() > deadline) {
                    driver.logTail(instance.id(), 40).forEach(System.out::println);
                    throw new AssertionError("the tenant could not free space within 90 s: " + e.getMessage(), e);
                }
                Thread.sleep(1000);
            }
        }
    }

    private static InstanceSpec spec(Plan plan) {
        String id = "db-d" + Long.toString(ThreadLocalRandom.current().nextLong(Long.MAX_VALUE), 36).substring(0, 8);
        return new InstanceSpec(id, PostgresVersion.DEFAULT, plan, "app", "app");
    }

    private static TenantCredentials credentials() {
        return new TenantCredentials("app", "app", "pw-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
    }

    private static Connection connect(RunningInstance instance, TenantCredentials credentials) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", credentials.username());
        props.setProperty("password", credentials.password());
        return DriverManager.getConnection("jdbc:postgresql://" + instance.endpoint().host() + ":"
                + instance.endpoint().port() + "/" + credentials.database(), props);
    }

    private static long count(RunningInstance instance, TenantCredentials credentials, String sql) throws SQLException {
        try (Connection c = connect(instance, credentials); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private static long allocatedBytes(Path file) {
        return Long.parseLong(Processes.check(List.of("du", "-B1", "--", file.toString()), Duration.ofSeconds(10))
                .split("\\s+")[0]);
    }

    /** The mount points under a directory, from this process's mount table. */
    private static List<String> mountsUnder(Path dir) throws IOException {
        String prefix = dir.toAbsolutePath().normalize() + "/";
        return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                .map(line -> line.split(" ")[4])
                .filter(mountPoint -> mountPoint.startsWith(prefix))
                .toList();
    }
}
