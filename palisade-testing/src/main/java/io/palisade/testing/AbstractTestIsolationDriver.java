package io.palisade.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.InstanceSpec;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.ServerLogin;
import io.palisade.spi.TenantCredentials;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The contract every isolation driver passes. Subclasses create the driver once per class and say how to check that
 * nothing of an instance is left on the host.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class AbstractTestIsolationDriver {
    private IsolationDriver driver;

    protected abstract IsolationDriver createDriver();

    /** Asserts the host holds nothing of instance {@code id}: processes, files, network, cgroups. */
    protected abstract void assertNothingLeft(String id);

    /** Runs after every instance was destroyed and the driver closed: remove work directories here. */
    protected void cleanUp() {}

    protected Plan plan() {
        return Plan.NANO;
    }

    protected IsolationDriver driver() {
        return driver;
    }

    @BeforeAll
    final void setUpDriver() {
        driver = createDriver();
        assertThat(driver.probe().usable()).as("probe: %s", driver.probe().reason()).isTrue();
    }

    @AfterAll
    final void tearDownDriver() {
        if (driver != null) {
            List<String> left = new ArrayList<>(driver.listInstances());
            left.forEach(driver::destroy);
            driver.close();
            cleanUp();
            assertThat(left).as("instances left by the test").isEmpty();
        }
    }

    protected static String newId() {
        return "db-t" + Long.toString(ThreadLocalRandom.current().nextLong(Long.MAX_VALUE), 36).substring(0, 8);
    }

    protected static TenantCredentials newCredentials() {
        return new TenantCredentials("app", "app", TestingPostgres.randomSecret());
    }

    /**
     * Connects as the tenant straight to its server, with the names the server knows it by (the proxy's rewrite on the
     * shared rungs).
     */
    protected static Connection connect(RunningInstance instance, TenantCredentials credentials, String password)
            throws SQLException {
        ServerLogin login = serverLogin(instance, credentials);
        return DriverManager.getConnection(
                "jdbc:postgresql://" + instance.endpoint() + "/" + login.database() + "?connectTimeout=10",
                login.user(),
                password);
    }

    protected static ServerLogin serverLogin(RunningInstance instance, TenantCredentials credentials) {
        return instance.serverLogin().orElseGet(() -> new ServerLogin(credentials.username(), credentials.database()));
    }

    @Test
    void lifecycleKeepsDataAndCleansUp() throws Exception {
        String id = newId();
        InstanceSpec spec = new InstanceSpec(id, PostgresVersion.DEFAULT, plan(), "app", "app");
        TenantCredentials credentials = newCredentials();
        List<String> phases = new ArrayList<>();
        RunningInstance instance = driver.provision(spec, credentials, phases::add);
        try {
            assertThat(phases).isNotEmpty();
            assertThat(driver.isRunning(id)).isTrue();
            assertThat(driver.listInstances()).contains(id);
            try (Connection c = connect(instance, credentials, credentials.password());
                    Statement s = c.createStatement()) {
                s.execute("CREATE TABLE kept (v text)");
                s.execute("INSERT INTO kept VALUES ('before-restart')");
                try (ResultSet rs = s.executeQuery("SELECT rolsuper, current_database() FROM pg_roles WHERE rolname = current_user")) {
                    assertThat(rs.next()).isTrue();
                    assertThat(rs.getBoolean(1)).as("tenant role must not be a superuser").isFalse();
                    assertThat(rs.getString(2)).isEqualTo(serverLogin(instance, credentials).database());
                }
            }
            InstanceStats stats = driver.stats(id);
            assertThat(stats.running()).isTrue();

            driver.stop(id);
            assertThat(driver.isRunning(id)).isFalse();
            assertThat(driver.listInstances()).as("a stopped instance keeps its volume").contains(id);

            instance = driver.start(spec, ProgressListener.NONE);
            try (Connection c = connect(instance, credentials, credentials.password());
                    Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT v FROM kept")) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getString(1)).isEqualTo("before-restart");
            }

            String newPassword = TestingPostgres.randomSecret();
            driver.setPassword(id, "app", newPassword);
            RunningInstance running = instance;
            assertThatThrownBy(() -> connect(running, credentials, credentials.password()).close())
                    .isInstanceOf(SQLException.class)
                    .hasMessageContaining("password authentication failed");
            try (Connection c = connect(instance, credentials, newPassword)) {
                assertThat(c.isValid(5)).isTrue();
            }
            assertThat(driver.logTail(id, 20)).isNotEmpty();
        } finally {
            driver.destroy(id);
        }
        assertThat(driver.isRunning(id)).isFalse();
        assertThat(driver.listInstances()).doesNotContain(id);
        assertNothingLeft(id);
        driver.destroy(id); // idempotent
    }

    @Test
    void tenantsAreSeparate() throws Exception {
        String a = newId();
        String b = newId();
        TenantCredentials credA = newCredentials();
        TenantCredentials credB = newCredentials();
        try {
            RunningInstance instA = driver.provision(new InstanceSpec(a, PostgresVersion.DEFAULT, plan(), "app", "app"), credA, ProgressListener.NONE);
            RunningInstance instB = driver.provision(new InstanceSpec(b, PostgresVersion.DEFAULT, plan(), "app", "app"), credB, ProgressListener.NONE);
            assertThat(List.of(instA.endpoint(), serverLogin(instA, credA)))
                    .as("A and B share neither server nor login")
                    .isNotEqualTo(List.of(instB.endpoint(), serverLogin(instB, credB)));
            assertThatThrownBy(() -> connect(instB, credB, credA.password()).close())
                    .as("A's password must not open B")
                    .isInstanceOf(SQLException.class);
            try (Connection c = connect(instA, credA, credA.password()); Statement s = c.createStatement()) {
                s.execute("CREATE TABLE only_in_a (x int)");
            }
            try (Connection c = connect(instB, credB, credB.password());
                    Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(*) FROM information_schema.tables WHERE table_name = 'only_in_a'")) {
                rs.next();
                assertThat(rs.getInt(1)).isZero();
            }
        } finally {
            driver.destroy(a);
            driver.destroy(b);
        }
        assertNothingLeft(a);
        assertNothingLeft(b);
    }

    @Test
    void destroyOfUnknownIdIsANoOp() {
        String id = newId();
        driver.destroy(id);
        assertThat(driver.isRunning(id)).isFalse();
    }
}
