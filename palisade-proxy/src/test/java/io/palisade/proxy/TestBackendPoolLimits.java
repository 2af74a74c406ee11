package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.postgresql.util.PSQLException;

/**
 * The backend pool never costs a client its login: against a real PostgreSQL 16 whose tenant role may hold exactly
 * as many connections as the proxy lets a database have ({@code CONNECTION LIMIT 4}), parked connections of another
 * login give way to new ones, and a server that refuses a login for too many connections gets back what the pool
 * parks on it for any database. Two event loops, so that giving way crosses loops.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestBackendPoolLimits {
    private static final String A = "db-limits0001";
    /** Another database id on the same server and role, as tenants of a shared server are. */
    private static final String NEIGHBOUR = "db-limits0002";
    private static final int LIMIT = 4;

    private TestingPostgres pg;
    private Path workDir;
    private PostgresProxy proxy;
    private Path ca;

    @BeforeAll
    void setUp() throws SQLException {
        pg = new TestingPostgres();
        try (Connection c = pg.connectAsAdmin(); Statement s = c.createStatement()) {
            s.execute("ALTER ROLE app CONNECTION LIMIT " + LIMIT);
        }
        workDir = TestingDirectories.newWorkDir("proxy-pool-limits");
        FakeResolver resolver = new FakeResolver().put(A, pg.endpoint(), pg.credentials())
                .put(NEIGHBOUR, pg.endpoint(), pg.credentials());
        proxy = new PostgresProxy(ProxyConfig.defaults(TestPostgresProxyIntegration.DOMAIN, workDir.resolve("tls"))
                .withBind("127.0.0.1", 0).withIoThreads(2).withLimits(LIMIT, 10_000)
                .withBackendPool(Duration.ofSeconds(60), LIMIT), resolver, resolver, new SimpleMeterRegistry())
                .start();
        ca = proxy.tlsMaterial().caCertificateFile().orElseThrow();
    }

    @AfterAll
    void tearDown() {
        if (proxy != null) {
            proxy.close();
        }
        if (pg != null) {
            pg.close();
        }
        TestingDirectories.deleteRecursively(workDir);
    }

    @AfterEach
    void emptyThePool() {
        proxy.evictIdleBackends(A);
        proxy.evictIdleBackends(NEIGHBOUR);
        TestPostgresProxyIntegration.assertNothingLeaked(proxy);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
                assertThat(proxy.openBackendConnections()).as("parked connections closed").isZero());
    }

    @Test
    void parkedConnectionsOfAnotherLoginGiveWayToNewLogins() throws Exception {
        park(A, "first-app");

        List<Connection> second = new ArrayList<>();
        try {
            for (int i = 0; i < LIMIT; i++) {
                // another application_name: a login the parked connections cannot serve
                Connection c = connect(A, "second-app");
                second.add(c);
                assertThat(TestPostgresProxyIntegration.queryString(c, "SELECT current_setting('application_name')"))
                        .isEqualTo("second-app");
            }
            assertThat(proxy.backendPool().idle(A)).as("every parked connection gave way").isZero();
        } finally {
            for (Connection c : second) {
                c.close();
            }
        }
    }

    @Test
    void aServerThatIsFullGetsBackWhatOtherDatabasesPark() throws Exception {
        park(NEIGHBOUR, "neighbour-app");

        // A's own clients and parked connections are far from its limit, so nothing gives way first: the server,
        // full of the neighbour's parked connections, refuses this one login
        assertThatThrownBy(() -> connect(A, "a-app").close())
                .isInstanceOf(PSQLException.class)
                .satisfies(e -> assertThat(((PSQLException) e).getSQLState()).isEqualTo("53300"));
        // and then gets them back at once, not after the pool's 60-s idle timeout
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
                assertThat(proxy.backendPool().idle(NEIGHBOUR)).isZero());
        try (Connection c = connect(A, "a-app")) {
            assertThat(TestPostgresProxyIntegration.queryString(c, "SELECT 1")).isEqualTo("1");
        }
    }

    /** {@link #LIMIT} clients of {@code id} log in, then leave cleanly: their backends are parked. */
    private void park(String id, String applicationName) throws SQLException {
        List<Connection> clients = new ArrayList<>();
        try {
            for (int i = 0; i < LIMIT; i++) {
                clients.add(connect(id, applicationName));
            }
        } finally {
            for (Connection c : clients) {
                c.close();
            }
        }
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
                assertThat(proxy.backendPool().idle(id)).as("parked connections of " + id).isEqualTo(LIMIT));
    }

    private Connection connect(String id, String applicationName) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", "app");
        properties.setProperty("password", pg.credentials().password());
        properties.setProperty("sslmode", "verify-full");
        properties.setProperty("sslrootcert", ca.toString());
        properties.setProperty("options", "endpoint=" + id);
        properties.setProperty("ApplicationName", applicationName);
        // else PgJDBC sets application_name after the login, and every login would look the same to the pool
        properties.setProperty("assumeMinServerVersion", "16");
        properties.setProperty("connectTimeout", "20");
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + proxy.port() + "/app", properties);
    }
}
