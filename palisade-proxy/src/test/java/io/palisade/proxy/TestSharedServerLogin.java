package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.palisade.spi.ServerLogin;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.postgresql.PGConnection;

/**
 * A database on a shared server: the server knows the tenant as {@code tenant_shared1} in database
 * {@code tenant_shared1}, the client logs in as {@code app} to {@code app}, and the proxy rewrites the startup packet
 * (end-to-end SCRAM still works: PostgreSQL ignores the SCRAM user name).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestSharedServerLogin {
    private static final String ID = "db-shared001";
    private static final String ROLE = "tenant_shared1";
    private final String password = "pw-" + Long.toString(System.nanoTime(), 36) + "-shared";
    private TestingPostgres pg;
    private Path workDir;
    private PostgresProxy proxy;
    private Path ca;

    @BeforeAll
    void setUp() throws SQLException {
        pg = new TestingPostgres();
        try (Connection c = pg.connectAsAdmin(); Statement s = c.createStatement()) {
            s.execute("SET password_encryption = 'scram-sha-256'");
            s.execute("CREATE ROLE " + ROLE + " LOGIN PASSWORD '" + password + "'");
            s.execute("CREATE DATABASE " + ROLE + " OWNER " + ROLE);
            s.execute("CREATE ROLE tenant_other LOGIN PASSWORD '" + password + "'");
        }
        workDir = TestingDirectories.newWorkDir("proxy-shared");
        FakeResolver resolver = new FakeResolver().putShared(ID, pg.endpoint(), new ServerLogin(ROLE, ROLE), password);
        proxy = new PostgresProxy(ProxyConfig.defaults(TestPostgresProxyIntegration.DOMAIN, workDir.resolve("tls"))
                .withBind("127.0.0.1", 0), resolver, resolver, new SimpleMeterRegistry()).start();
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
    void nothingLeaked() {
        TestPostgresProxyIntegration.assertNothingLeaked(proxy);
    }

    private Connection connect(String user, String database) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", user);
        properties.setProperty("password", password);
        properties.setProperty("sslmode", "verify-full");
        properties.setProperty("sslrootcert", ca.toString());
        properties.setProperty("options", "endpoint=" + ID);
        properties.setProperty("connectTimeout", "20");
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + proxy.port() + "/" + database, properties);
    }

    @Test
    void theTenantsLoginReachesItsInternalRoleAndDatabase() throws SQLException {
        try (Connection c = connect("app", "app"); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT current_user, current_database()")) {
            rs.next();
            assertThat(rs.getString(1)).isEqualTo(ROLE);
            assertThat(rs.getString(2)).isEqualTo(ROLE);
            assertThat(c.unwrap(PGConnection.class).getParameterStatus("session_authorization"))
                    .as("the internal role name is not reported as the session's user").isEqualTo("app");
        }
    }

    @Test
    void anotherUserIsRefusedLikeAWrongPassword() {
        for (String user : new String[] {"postgres", ROLE, "tenant_other", "APP"}) {
            assertThatThrownBy(() -> connect(user, "app").close())
                    .as("user %s", user)
                    .isInstanceOf(SQLException.class)
                    .hasMessageContaining("password authentication failed for user \"" + user + "\"");
        }
    }

    @Test
    void anotherDatabaseIsRefusedLikeAWrongPassword() {
        for (String database : new String[] {"nosuchdb", ROLE, "postgres", "template1"}) {
            assertThatThrownBy(() -> connect("app", database).close())
                    .as("database %s", database)
                    .isInstanceOf(SQLException.class)
                    .hasMessageContaining("password authentication failed for user \"app\"");
        }
    }
}
