package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ServerLogin;
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
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.postgresql.util.PSQLException;

/**
 * The backend pool never costs a client its login, against real PostgreSQL 16 servers: where the tenant role may hold
 * exactly as many connections as the proxy lets a database have ({@code CONNECTION LIMIT 4}), parked connections of
 * another login give way to new ones; where the role's limit is below the proxy's, or a shared server is full
 * ({@code max_connections}) of other tenants' parked connections, the server's refusal makes the proxy give them back
 * and log in again, unseen by the client; a tenant at its own role's limit does not cost its neighbours theirs. Two
 * event loops, so that giving way crosses loops.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestBackendPoolLimits {
    private static final String A = "db-limits0001";
    /** Three tenants of one shared server, each with its own role and database; ONE may hold one connection. */
    private static final String ONE = "db-limits0011";
    private static final String TWO = "db-limits0012";
    private static final String THREE = "db-limits0013";
    /** A fourth tenant whose role may hold 2 connections, below the proxy's limit. */
    private static final String FOUR = "db-limits0014";
    private static final int LIMIT = 4;
    /** The shared server's {@code max_connections}, none reserved for superusers. */
    private static final int SHARED_MAX = 6;
    /** Rounds of {@link #loginBurstOnAFullServer}. */
    private static final int BURSTS = 10;
    private final String sharedPassword = "pw-" + Long.toString(System.nanoTime(), 36) + "-limits";

    private TestingPostgres pg;
    private TestingPostgres shared;
    private Path workDir;
    private PostgresProxy proxy;
    private Path ca;

    @BeforeAll
    void setUp() throws SQLException {
        pg = new TestingPostgres();
        try (Connection c = pg.connectAsAdmin(); Statement s = c.createStatement()) {
            s.execute("ALTER ROLE app CONNECTION LIMIT " + LIMIT);
        }
        shared = new TestingPostgres(PostgresVersion.DEFAULT, Map.of("max_connections", Integer.toString(SHARED_MAX),
                "superuser_reserved_connections", "0"));
        try (Connection c = shared.connectAsAdmin(); Statement s = c.createStatement()) {
            s.execute("SET password_encryption = 'scram-sha-256'");
            for (String role : List.of("tenant_one", "tenant_two", "tenant_three", "tenant_four")) {
                s.execute("CREATE ROLE " + role + " LOGIN PASSWORD '" + sharedPassword + "'"
                        + (role.equals("tenant_one") ? " CONNECTION LIMIT 1" : "")
                        + (role.equals("tenant_four") ? " CONNECTION LIMIT 2" : ""));
                s.execute("CREATE DATABASE " + role + " OWNER " + role);
            }
        }
        workDir = TestingDirectories.newWorkDir("proxy-pool-limits");
        FakeResolver resolver = new FakeResolver().put(A, pg.endpoint(), pg.credentials());
        Map<String, String> roles = Map.of(ONE, "tenant_one", TWO, "tenant_two", THREE, "tenant_three",
                FOUR, "tenant_four");
        roles.forEach((id, role) -> resolver.putShared(id, shared.endpoint(), new ServerLogin(role, role),
                sharedPassword));
        proxy = new PostgresProxy(ProxyConfig.defaults(TestPostgresProxyIntegration.DOMAIN, workDir.resolve("tls"))
                .withBind("127.0.0.1", 0).withIoThreads(2).withLimits(LIMIT, 10_000)
                .withBackendPool(Duration.ofSeconds(60), LIMIT), resolver, resolver, new SimpleMeterRegistry())
                .start();
        ca = proxy.tlsMaterial().caCertificateFile().orElseThrow();
    }

    @AfterAll
    void tearDown() {
        PooledProxyFixture.closeAll(proxy, workDir, pg, shared);
    }

    @AfterEach
    void emptyThePool() {
        PooledProxyFixture.emptyThePool(proxy, List.of(A, ONE, TWO, THREE, FOUR));
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
                // one parked connection gave way per login, before it (a refused login's retry would take them all)
                assertThat(proxy.backendPool().idle(A)).as("parked connections left").isEqualTo(LIMIT - 1 - i);
            }
        } finally {
            for (Connection c : second) {
                c.close();
            }
        }
    }

    @Test
    void aFullServerGetsBackWhatOtherTenantsPark() throws Exception {
        List<Connection> three = new ArrayList<>();
        try {
            for (int i = 0; i < SHARED_MAX - LIMIT; i++) {
                three.add(connect(THREE, "three-app"));
            }
            // two logins refused at once race: the first one's retry takes what is parked, and the second one must
            // still log in again, once the server has let that go (before, it passed the refusal on in about one
            // burst of 13); every other burst finds TWO's connections all parked on one of the two event loops, so
            // that one login's loop gives them back while the other's has nothing to give
            for (int burst = 0; burst < BURSTS; burst++) {
                if (burst % 2 == 0) {
                    park(TWO, "two-app");
                } else {
                    parkOnOneLoop(TWO, "two-app");
                }
                loginBurstOnAFullServer();
                proxy.evictIdleBackends(TWO);
                proxy.evictIdleBackends(THREE);
                proxy.evictIdleBackends(A);
                await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(proxy.openBackendConnections())
                        .as("backend connections, once the pool is empty").isEqualTo(three.size()));
            }
        } finally {
            for (Connection c : three) {
                c.close();
            }
        }
    }

    /**
     * THREE's own clients and parked connections are below its limit, so nothing gives way first: the server, full of
     * TWO's parked connections, refuses the backend logins ("sorry, too many clients already"); the proxy gets them
     * back and logs in again, and the clients (two at once: one's retry must not spoil the other's) never see the
     * refusal.
     */
    private void loginBurstOnAFullServer() throws Exception {
        ExecutorService clients = Executors.newFixedThreadPool(2);
        List<Future<Connection>> burst = List.of(clients.submit(() -> connect(THREE, "three-app")),
                clients.submit(() -> connect(THREE, "three-app")));
        clients.shutdown();
        try {
            for (Future<Connection> login : burst) {
                try (Connection c = login.get(30, TimeUnit.SECONDS)) {
                    assertThat(TestPostgresProxyIntegration.queryString(c, "SELECT 1")).isEqualTo("1");
                }
            }
        } finally {
            for (Future<Connection> login : burst) {
                if (login.state() == Future.State.SUCCESS) {
                    login.resultNow().close();
                }
            }
        }
        assertThat(proxy.backendPool().idle(TWO)).as("TWO's parked connections, given back").isZero();
    }

    @Test
    void aRoleLimitBelowTheProxysIsMetByGivingBackParkedConnections() throws Exception {
        // FOUR's role may hold 2 connections, the proxy lets the database have 4: giving way by the proxy's limit
        // cannot see that 2 parked + 1 new is too many; the server's refusal of the backend login can
        park(FOUR, "four-a", 2);
        try (Connection first = connect(FOUR, "four-b"); Connection second = connect(FOUR, "four-b")) {
            assertThat(TestPostgresProxyIntegration.queryString(first, "SELECT current_setting('application_name')"))
                    .isEqualTo("four-b");
            assertThat(TestPostgresProxyIntegration.queryString(second, "SELECT 1")).isEqualTo("1");
        }
    }

    @Test
    void aTenantAtItsOwnLimitDoesNotCostItsNeighboursTheirParkedConnections() throws Exception {
        park(TWO, "two-app");
        try (Connection only = connect(ONE, "one-app")) {
            assertThatThrownBy(() -> connect(ONE, "one-app").close())
                    .isInstanceOf(PSQLException.class)
                    .satisfies(e -> assertThat(((PSQLException) e).getSQLState()).isEqualTo("53300"))
                    .hasMessageContaining("too many connections for role");
            await().during(Duration.ofMillis(500)).atMost(Duration.ofSeconds(2)).untilAsserted(() ->
                    assertThat(proxy.backendPool().idle(TWO)).as("TWO's parked connections").isEqualTo(LIMIT));
            assertThat(TestPostgresProxyIntegration.queryString(only, "SELECT 1")).isEqualTo("1");
        }
    }

    /** {@link #LIMIT} clients of {@code id} log in, then leave cleanly: their backends are parked. */
    private void park(String id, String applicationName) throws SQLException {
        park(id, applicationName, LIMIT);
    }

    /**
     * As {@link #park(String, String)}, all on one event loop: each client of {@code id} but the last is followed by
     * one of {@link #A} (another server, whose backends are then evicted), and the proxy hands its two loops to
     * clients in turn.
     */
    private void parkOnOneLoop(String id, String applicationName) throws SQLException {
        List<Connection> clients = new ArrayList<>();
        try {
            for (int i = 0; i < LIMIT; i++) {
                clients.add(connect(id, applicationName));
                if (i < LIMIT - 1) {
                    clients.add(connect(A, "between"));
                }
            }
        } finally {
            for (Connection c : clients) {
                c.close();
            }
        }
        proxy.evictIdleBackends(A);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            assertThat(proxy.backendPool().idle()).as("parked connections").isEqualTo(LIMIT);
            assertThat(proxy.backendPool().parkedPerLoop(id)).as("parked connections of %s per event loop", id)
                    .contains(LIMIT);
        });
    }

    private void park(String id, String applicationName, int count) throws SQLException {
        List<Connection> clients = new ArrayList<>();
        try {
            for (int i = 0; i < count; i++) {
                clients.add(connect(id, applicationName));
            }
        } finally {
            for (Connection c : clients) {
                c.close();
            }
        }
        // parked, not only counted: a backend still being reset cannot give way yet
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            assertThat(proxy.backendPool().idle(id)).as("parked connections of " + id).isEqualTo(count);
            assertThat(proxy.backendPool().parkedPerLoop(id).stream().mapToInt(Integer::intValue).sum())
                    .as("parked connections of %s, reset done", id).isEqualTo(count);
        });
    }

    private Connection connect(String id, String applicationName) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", "app");
        properties.setProperty("password", id.equals(A) ? pg.credentials().password() : sharedPassword);
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
