package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Processes;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * SIGKILL of the QEMU process while a client commits with synchronous commit: after a restart from the volume, every
 * acknowledged commit is present. Repeated a few times on one VM; bounded in count and time.
 */
class TestVmDurability {
    private static final int TRIALS = 3;

    @Test
    void acknowledgedCommitsSurviveSigkillOfQemu() throws Exception {
        VmDriver driver = TestingVm.newDriver("10.214.3.0/24");
        String id = "db-tdur" + Long.toString(System.nanoTime() % 100_000, 36);
        InstanceSpec spec = new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app");
        TenantCredentials credentials = new TenantCredentials("app", "app", TestingVm.randomSecret());
        try {
            RunningInstance instance = driver.provision(spec, credentials, ProgressListener.NONE);
            try (Connection c = connect(instance, credentials); Statement s = c.createStatement()) {
                s.execute("CREATE TABLE acked (trial int, n int, PRIMARY KEY (trial, n))");
                try (ResultSet rs = s.executeQuery(
                        "SELECT current_setting('synchronous_commit'), current_setting('fsync')")) {
                    rs.next();
                    assertThat(rs.getString(1)).isEqualTo("on");
                    assertThat(rs.getString(2)).isEqualTo("on");
                }
            }
            for (int trial = 1; trial <= TRIALS; trial++) {
                ConcurrentSkipListSet<Integer> acknowledged = new ConcurrentSkipListSet<>();
                AtomicBoolean writing = new AtomicBoolean(true);
                int currentTrial = trial;
                Connection writerConnection = connect(instance, credentials);
                Thread writer = Thread.ofPlatform().name("test-durability-writer").start(() -> {
                    try (Connection c = writerConnection;
                            PreparedStatement insert = c.prepareStatement("INSERT INTO acked VALUES (?, ?)")) {
                        for (int n = 0; writing.get() && n < 1_000_000; n++) {
                            insert.setInt(1, currentTrial);
                            insert.setInt(2, n);
                            insert.executeUpdate(); // autocommit: acknowledged once this returns
                            acknowledged.add(n);
                        }
                    } catch (SQLException e) {
                        // the VM was killed under us: expected
                    }
                });
                org.awaitility.Awaitility.await("50 acknowledged writes before the kill").atMost(Duration.ofSeconds(60))
                        .pollInterval(Duration.ofMillis(20)).until(() -> acknowledged.size() >= 50);
                Thread.sleep(300);
                long pid = driver.pid(id).orElseThrow();
                Processes.signal(pid, "KILL");
                assertThat(Processes.awaitExit(pid, Duration.ofSeconds(10))).isTrue();
                writing.set(false);
                // the in-flight commit gets no answer from a dead VM (the NAT drops silently): abort the socket
                writerConnection.abort(Runnable::run);
                writer.join(Duration.ofSeconds(30));
                assertThat(writer.isAlive()).isFalse();
                assertThat(acknowledged).as("commits acknowledged before the kill").isNotEmpty();

                instance = driver.start(spec, ProgressListener.NONE);
                try (Connection c = connect(instance, credentials);
                        PreparedStatement count = c.prepareStatement(
                                "SELECT count(*) FROM acked WHERE trial = ? AND n = ANY (?)")) {
                    count.setInt(1, trial);
                    count.setArray(2, c.createArrayOf("int4", acknowledged.toArray()));
                    try (ResultSet rs = count.executeQuery()) {
                        rs.next();
                        System.out.printf("durability trial %d: acknowledged %d, present %d (watchdog retries %s)%n",
                                trial, acknowledged.size(), rs.getInt(1), instance.details().get("watchdog_retries"));
                        assertThat(rs.getInt(1)).as("acknowledged commits present after SIGKILL + restart")
                                .isEqualTo(acknowledged.size());
                    }
                }
            }
            // a restart of palisade: a new driver over the same directory finds the running VM and manages it
            driver.close();
            VmDriver restarted = new VmDriver(driver.config());
            assertThat(restarted.isRunning(id)).isTrue();
            assertThat(restarted.listInstances()).contains(id);
            assertThat(restarted.stats(id).pid()).isEqualTo(driver.pid(id).orElseThrow());
            restarted.stop(id);
            assertThat(restarted.isRunning(id)).isFalse();
            instance = restarted.start(spec, ProgressListener.NONE);
            try (Connection c = connect(instance, credentials);
                    Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(DISTINCT trial) FROM acked")) {
                rs.next();
                assertThat(rs.getInt(1)).isEqualTo(TRIALS);
            }
        } finally {
            driver.destroy(id);
            TestingVm.assertNothingLeft(driver, id);
            driver.close();
            TestingDirectories.deleteRecursively(driver.config().instancesDir());
        }
    }

    private static Connection connect(RunningInstance instance, TenantCredentials credentials) throws SQLException {
        return DriverManager.getConnection(
                "jdbc:postgresql://" + instance.endpoint() + "/app?connectTimeout=10&socketTimeout=30&sslmode=disable",
                credentials.username(), credentials.password());
    }
}
