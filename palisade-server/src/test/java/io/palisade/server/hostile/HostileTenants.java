package io.palisade.server.hostile;

import static java.util.Objects.requireNonNull;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.server.TestingPalisade;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * One palisade ({@link TestingPalisade}, the full server in this JVM) shared by a hostile-tenant test class, with a
 * second account besides the admin one, and helpers to create databases as either account and reach them as their
 * owners do: PgJDBC through the proxy, the SQL broker over HTTP. Close deletes what it created and stops palisade.
 * Thread-safe as far as {@link TestingPalisade} is (creation is meant for the class's set-up).
 */
public final class HostileTenants implements AutoCloseable {
    /** A database as its owner got it from the API: id, secrets and the ways to reach it. */
    public record Tenant(String key, String id, String isolation, String username, String password, String database,
            String jdbcUrl, String brokerUrl, String brokerToken) {
        public Tenant {
            requireNonNull(key, "key is null");
            requireNonNull(id, "id is null");
            requireNonNull(isolation, "isolation is null");
            requireNonNull(username, "username is null");
            requireNonNull(password, "password is null");
            requireNonNull(database, "database is null");
            requireNonNull(jdbcUrl, "jdbcUrl is null");
            requireNonNull(brokerUrl, "brokerUrl is null");
            requireNonNull(brokerToken, "brokerToken is null");
        }

        /** The host name that routes to this database on the proxy (SNI) and the broker (connection string). */
        public String hostname() {
            return id + ".db.localhost";
        }

        /** The connection string {@code POST /sql} takes, with any user and password. */
        public String serverlessUrl(String user, String secret) {
            return "postgres://" + enc(user) + ":" + enc(secret) + "@" + hostname() + "/" + enc(database);
        }

        @Override
        public String toString() {
            return "Tenant[" + id + " on " + isolation + "]";
        }
    }

    private final TestingPalisade palisade;
    private final String otherKey;
    private final List<Tenant> created = new ArrayList<>();

    private HostileTenants(TestingPalisade palisade) {
        this.palisade = palisade;
        this.otherKey = palisade.newAccount("mallory");
    }

    /**
     * A palisade on which the process rung runs (the class fails in CI and is skipped elsewhere, saying why, when it
     * cannot).
     */
    public static HostileTenants open() {
        return open(Map.of());
    }

    public static HostileTenants open(Map<String, String> settings) {
        return open("process", settings);
    }

    /** A palisade on which {@code rung} must run (see {@link TestingPalisade#requireUsable}). */
    public static HostileTenants open(String rung, Map<String, String> settings) {
        java.util.Map<String, String> all = new java.util.HashMap<>(Map.of("agent.reconcile-interval", "500ms"));
        all.putAll(settings);
        TestingPalisade palisade = TestingPalisade.requiring(rung, all);
        try {
            return new HostileTenants(palisade);
        } catch (RuntimeException | Error e) {
            palisade.close();
            throw e;
        }
    }

    public TestingPalisade palisade() {
        return palisade;
    }

    /** The admin account's API key (the owner in most tests). */
    public String ownerKey() {
        return palisade.adminKey();
    }

    /** The second account's API key (the attacker, or the neighbour). */
    public String otherKey() {
        return otherKey;
    }

    public int proxyPort() {
        return palisade.server().proxyPort().orElseThrow();
    }

    public Path caCertificate() {
        return palisade.server().caCertificate().orElseThrow();
    }

    /** Creates a database as the account of {@code key} on {@code isolation}; 201 is required. */
    public Tenant create(String key, String label, String isolation) {
        return create(key, label, isolation, "");
    }

    /** As {@link #create(String, String, String)} with more request fields, e.g. {@code ,"memory_mb":1024}. */
    public Tenant create(String key, String label, String isolation, String moreFields) {
        TestingPalisade.Response response = palisade.request("POST", "/v1/databases",
                "{\"label\":\"" + label + "\",\"isolation\":\"" + isolation + "\"" + moreFields + "}", key);
        assertThat(response.status()).as("create %s on %s: %s", label, isolation, response.body()).isEqualTo(201);
        JsonNode db = response.json();
        Tenant tenant = new Tenant(key, db.path("id").asText(), isolation, db.path("username").asText(),
                db.path("password").asText(), db.path("database").asText(), db.path("jdbc_url").asText(),
                db.path("broker_url").asText(), db.path("broker_token").asText());
        synchronized (created) {
            created.add(tenant);
        }
        return tenant;
    }

    /** The database as its owner's key sees it ({@code GET /v1/databases/{id}}). */
    public JsonNode describe(Tenant tenant) {
        TestingPalisade.Response response = palisade.request("GET", "/v1/databases/" + tenant.id(), null, tenant.key());
        assertThat(response.status()).as(response.body()).isEqualTo(200);
        return response.json();
    }

    /** The database's backups as its owner's key sees them ({@code GET /v1/databases/{id}/backups}). */
    public JsonNode describeBackups(Tenant tenant) {
        TestingPalisade.Response response = palisade.request("GET", "/v1/databases/" + tenant.id() + "/backups", null,
                tenant.key());
        assertThat(response.status()).as(response.body()).isEqualTo(200);
        return response.json();
    }

    /** A PgJDBC connection through the proxy with the tenant's own login. */
    public static Connection connect(Tenant tenant) throws SQLException {
        return connect(tenant, tenant.username(), tenant.password(), tenant.database());
    }

    /** A PgJDBC connection through the proxy to the tenant's endpoint with any login and database name. */
    public static Connection connect(Tenant endpoint, String user, String password, String database)
            throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", user);
        properties.setProperty("password", password);
        properties.setProperty("connectTimeout", "15");
        properties.setProperty("socketTimeout", "60");
        String url = endpoint.jdbcUrl();
        if (!database.equals(endpoint.database())) {
            url = url.replaceFirst("/" + java.util.regex.Pattern.quote(endpoint.database()) + "\\?",
                    "/" + java.util.regex.Matcher.quoteReplacement(database) + "?");
        }
        return DriverManager.getConnection(url, properties);
    }

    /** The owner logs in through the proxy and gets an answer; fails the test otherwise. */
    public static void assertAnswers(Tenant tenant) {
        try (Connection c = connect(tenant); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("select 40 + 2")) {
            assertThat(rs.next()).isTrue();
            assertThat(rs.getInt(1)).isEqualTo(42);
        } catch (SQLException e) {
            throw new AssertionError(tenant + " does not answer its owner: " + e.getSQLState() + " " + e.getMessage(),
                    e);
        }
    }

    /** SQLSTATE of a refused login (null when it succeeded). */
    public static String loginError(Tenant endpoint, String user, String password, String database) {
        try (Connection c = connect(endpoint, user, password, database)) {
            return null;
        } catch (SQLException e) {
            return e.getSQLState();
        }
    }

    static String enc(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }

    @Override
    public void close() {
        try {
            synchronized (created) {
                for (Tenant tenant : created) {
                    palisade.request("DELETE", "/v1/databases/" + tenant.id(), null, tenant.key());
                }
            }
        } finally {
            palisade.close();
        }
    }
}
