package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.agent.shared.TenantLimits;
import io.palisade.host.Processes;
import io.palisade.spi.Plan;
import io.palisade.spi.ServerLogin;
import java.net.URI;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Tenant A against tenant B on the same shared server, through the proxy with real clients (PgJDBC with the URLs the
 * API returned, psql for {@code \c}): every attempt fails with the SQLSTATE and message asserted here, and B keeps
 * working after each test. Then the limits a shared server enforces per tenant: A hits its own connection limit first,
 * and a runaway statement or an idle transaction is cut off by the role defaults and, when A turns those off, by
 * palisade's monitor. One subclass per rung; both tenants of a class are on that rung.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class AbstractTestSharedRungIsolation {
    /** Short timeouts for every tenant of this palisade, so the limit tests take seconds (shared.* overrides). */
    private static final Duration STATEMENT_LIMIT = Duration.ofSeconds(3);
    private static final Duration IDLE_LIMIT = Duration.ofSeconds(3);
    /** The monitor acts a grace second after a limit, checks every second; plus slack for a busy 2-core host. */
    private static final Duration MONITOR_SLACK = Duration.ofSeconds(5);
    private static final String B_SECRET = "b-secret-7f3a";
    private static final String B_QUERY_MARKER = "b-query-marker-91c2";

    /** How the server refuses something: the SQLSTATE, and a part of the message. */
    protected record Refusal(String sqlState, String message) {}

    /** One thing A tries, and how the server refuses it; {@code inTransaction} for commands that need a block. */
    protected record Attempt(String sql, String sqlState, String message, boolean inTransaction) {
        Attempt(String sql, String sqlState, String message) {
            this(sql, sqlState, message, false);
        }

        Attempt(String sql, Refusal refusal) {
            this(sql, refusal.sqlState(), refusal.message(), false);
        }
    }

    /** A tenant as the API returned it, and the names the shared server knows it by (from the store). */
    protected record Tenant(String id, String url, String role, String database) {
        String password() {
            return URLDecoder.decode(URI.create(url).getRawUserInfo().split(":", 2)[1], StandardCharsets.UTF_8);
        }
    }

    private TestingPalisade palisade;
    protected Tenant a;
    protected Tenant b;
    /** A session B keeps open through the whole class, and its server pid. */
    private Connection bSession;
    private int bSessionPid;
    private long bLargeObject;

    /** The rung both tenants live on. */
    protected abstract String isolation();

    /** How A names B's table {@code t}, and how the server refuses any use of that name. */
    protected abstract String bTable();

    protected abstract Refusal bTableRefusal();

    /** How the server refuses A's reading B's large object. */
    protected abstract Refusal bLargeObjectRefusal(long oid);

    /** Databases of the server other than A's own, as A would name them (B's first where B has one of its own). */
    protected abstract List<String> foreignDatabases();

    /** This rung's attempts to give B (or everybody) privileges on what A owns. */
    protected abstract List<Attempt> rungGrantAttempts();

    /** This rung's attempts to create objects outside A's own space. */
    protected abstract List<Attempt> rungCreateAttempts();

    @BeforeAll
    void start() throws SQLException {
        palisade = TestingPalisade.requiring(isolation(), Map.of(
                "shared.statement-timeout", STATEMENT_LIMIT.toSeconds() + "s",
                "shared.idle-in-transaction-timeout", IDLE_LIMIT.toSeconds() + "s"));
        a = create("tenant-a");
        b = create("tenant-b");
        var pool = palisade.server().sharedServers();
        assertThat(pool.serverOf(a.id())).as("shared server of A").isPresent();
        assertThat(pool.serverOf(b.id())).as("A and B share one server").isEqualTo(pool.serverOf(a.id()));
        try (Connection c = PgUrls.connect(b.url()); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t (id int PRIMARY KEY, secret text)");
            s.execute("INSERT INTO t VALUES (1, '" + B_SECRET + "')");
            try (ResultSet rs = s.executeQuery("SELECT lo_from_bytea(0, '" + B_SECRET + "')")) {
                rs.next();
                bLargeObject = rs.getLong(1);
            }
        }
        try (Connection c = PgUrls.connect(a.url()); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE own (id int PRIMARY KEY)");
        }
        bSession = PgUrls.connect(b.url());
        bSessionPid = queryInt(bSession, "SELECT pg_backend_pid()");
    }

    private Tenant create(String label) {
        TestingPalisade.Response response = palisade.post("/v1/databases",
                "{\"label\":\"" + label + "\",\"isolation\":\"" + isolation() + "\",\"plan\":\"nano\"}");
        JsonNode db = response.json();
        assertThat(response.status()).as(response.body()).isEqualTo(201);
        assertThat(db.path("isolation").asText()).isEqualTo(isolation());
        ServerLogin login = palisade.server().store().find(db.get("id").asText()).orElseThrow().serverLogin()
                .orElseThrow(() -> new AssertionError("no server login for " + db));
        return new Tenant(db.get("id").asText(), db.get("connection_url").asText(), login.user(), login.database());
    }

    @AfterAll
    void stop() throws SQLException {
        try {
            if (bSession != null) {
                bSession.close();
            }
            List<String> failedDeletes = new ArrayList<>();
            // B first: nothing A did may keep B's role or database from being dropped
            for (Tenant tenant : new Tenant[] {b, a}) {
                if (palisade != null && tenant != null) {
                    TestingPalisade.Response deleted = palisade.delete("/v1/databases/" + tenant.id());
                    if (deleted.status() >= 300) {
                        failedDeletes.add(tenant.id() + ": " + deleted.body());
                    }
                }
            }
            assertThat(failedDeletes).as("deletes").isEmpty();
        } finally {
            if (palisade != null) {
                palisade.close();
            }
        }
    }

    /** After every test: B's data is intact, B can write, and B's long-lived session was never ended. */
    @AfterEach
    void bStillWorks() throws SQLException {
        try (Connection c = PgUrls.connect(b.url()); Statement s = c.createStatement()) {
            try (ResultSet rs = s.executeQuery("SELECT string_agg(secret, ',' ORDER BY id) FROM t")) {
                rs.next();
                assertThat(rs.getString(1)).as("B's rows").isEqualTo(B_SECRET);
            }
            s.execute("SET lock_timeout = '5s'");
            s.execute("INSERT INTO t VALUES (2, 'written')");
            s.execute("DELETE FROM t WHERE id = 2");
        }
        assertThat(queryInt(bSession, "SELECT pg_backend_pid()")).as("B's open session").isEqualTo(bSessionPid);
    }

    // ---- connecting elsewhere ----

    @Test
    void otherDatabasesAreClosedToA() throws SQLException {
        try (Connection c = PgUrls.connect(a.url())) {
            List<String> listed = queryStrings(c, "SELECT datname FROM pg_database");
            // what the rung cannot hide: the names of the server's databases (B's own on the database rung)
            assertThat(listed).containsAll(foreignDatabases());
        }
        // through palisade, a shared-rung login reaches its own database only: any other name is refused before
        // the server is asked, exactly like a wrong password
        List<String> others = new java.util.ArrayList<>(foreignDatabases());
        others.add("template0");
        for (String database : others) {
            SQLException e = connectFails(login(a, "app", a.password(), database));
            assertState(e, "28P01", "password authentication failed for user \"app\"");
        }
        // psql's own \\c, reusing the connection's other parameters
        String target = foreignDatabases().get(0);
        Processes.Result psql = Processes.run(List.of("psql", a.url(), "-qAt", "-c", "\\c " + target,
                "-c", "SELECT 'now in ' || current_database()"), Duration.ofSeconds(30), null);
        assertThat(psql.output()).contains("password authentication failed for user \"app\"")
                .doesNotContain("now in " + target);
    }

    @Test
    void bHostnameRefusesAPassword() {
        SQLException e = connectFails(login(b, "app", a.password(), "app"));
        assertState(e, "28P01", "password authentication failed for user \"app\"");
    }

    @Test
    void onlyTheUserAppLogsInThroughTheProxy() {
        for (String user : List.of("postgres", "palisade_admin", b.role(), a.role())) {
            String password = user.equals(b.role()) ? b.password() : a.password();
            SQLException e = connectFails(login(a, user, password, "app"));
            assertState(e, "28P01", "password authentication failed for user \"" + user + "\"");
        }
    }

    /** The shared server's port is loopback-only, but A can learn it: the server itself must refuse A there too. */
    @Test
    void theSharedServerItselfRefusesAOutsideItsDatabase() throws SQLException {
        int port;
        try (Connection c = PgUrls.connect(a.url())) {
            port = queryInt(c, "SELECT inet_server_port()");
        }
        for (String database : foreignDatabases()) {
            assertState(connectFails(port, a.role(), a.password(), database), "42501",
                    "permission denied for database \"" + database + "\"");
        }
        assertState(connectFails(port, b.role(), a.password(), b.database()), "28P01",
                "password authentication failed for user \"" + b.role() + "\"");
        assertState(connectFails(port, "palisade_admin", a.password(), "postgres"), "28000",
                "pg_hba.conf rejects connection");
    }

    // ---- inside A's session ----

    @Test
    void noRoleSwitch() throws SQLException {
        try (Connection c = PgUrls.connect(a.url())) {
            assertThat(queryStrings(c, "SELECT rolname FROM pg_roles")).contains(b.role());
            refused(c, new Attempt("SET ROLE " + b.role(), "42501",
                    "permission denied to set role \"" + b.role() + "\""));
            refused(c, new Attempt("SET SESSION AUTHORIZATION " + b.role(), "42501",
                    "permission denied to set session authorization"));
            refused(c, new Attempt("SET ROLE palisade_admin", "42501",
                    "permission denied to set role \"palisade_admin\""));
            assertThat(queryStrings(c, "SELECT current_user || ',' || session_user"))
                    .containsExactly(a.role() + "," + a.role());
        }
    }

    @Test
    void noServerFilesOrPrograms() throws SQLException {
        try (Connection c = PgUrls.connect(a.url())) {
            refused(c, new Attempt("SELECT pg_read_file('postgresql.conf')", "42501",
                    "permission denied for function pg_read_file"));
            refused(c, new Attempt("SELECT pg_ls_dir('.')", "42501", "permission denied for function pg_ls_dir"));
            refused(c, new Attempt("SELECT lo_import('/etc/passwd')", "42501",
                    "permission denied for function lo_import"));
            refused(c, new Attempt("COPY own FROM '/etc/passwd'", "42501", "permission denied to COPY from a file"));
            refused(c, new Attempt("COPY (SELECT 1) TO PROGRAM 'id'", "42501",
                    "permission denied to COPY to or from an external program"));
        }
    }

    @Test
    void bTableIsUnreachableByQualifiedName() throws SQLException {
        try (Connection c = PgUrls.connect(a.url())) {
            for (String sql : List.of("SELECT * FROM " + bTable(), "INSERT INTO " + bTable() + " VALUES (3, 'a')",
                    "UPDATE " + bTable() + " SET secret = 'a'", "DELETE FROM " + bTable(), "TRUNCATE " + bTable())) {
                refused(c, new Attempt(sql, bTableRefusal()));
            }
            assertThat(queryStrings(c, "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                    + "WHERE table_name = 't'")).as("B's table listed to A").isEmpty();
        }
    }

    @Test
    void bLargeObjectIsUnreachable() throws SQLException {
        try (Connection c = PgUrls.connect(a.url())) {
            Refusal refusal = bLargeObjectRefusal(bLargeObject);
            refused(c, new Attempt("SELECT lo_get(" + bLargeObject + ")", refusal));
            refused(c, new Attempt("SELECT lo_put(" + bLargeObject + ", 0, 'x')", refusal));
            refused(c, new Attempt("SELECT lo_unlink(" + bLargeObject + ")", refusal.sqlState(),
                    Long.toString(bLargeObject)));
        }
        try (Connection c = PgUrls.connect(b.url())) {
            assertThat(queryStrings(c, "SELECT convert_from(lo_get(" + bLargeObject + "), 'UTF8')"))
                    .containsExactly(B_SECRET);
        }
    }

    @Test
    void noLocksOnBOrTheCatalogs() throws SQLException {
        try (Connection c = PgUrls.connect(a.url())) {
            refused(c, new Attempt("LOCK TABLE " + bTable() + " IN ACCESS EXCLUSIVE MODE",
                    bTableRefusal().sqlState(), bTableRefusal().message(), true));
            refused(c, new Attempt("LOCK TABLE pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE", "42501",
                    "permission denied for table pg_database", true));
            refused(c, new Attempt("LOCK TABLE pg_catalog.pg_authid IN ACCESS SHARE MODE", "42501",
                    "permission denied for table pg_authid", true));
        }
    }

    @Test
    void bBackendsCannotBeSignalled() throws SQLException {
        try (Connection c = PgUrls.connect(a.url())) {
            // A sees B's pid (what the rung cannot hide), but cannot signal it
            assertThat(queryStrings(c, "SELECT pid::text FROM pg_stat_activity WHERE usename = '" + b.role() + "'"))
                    .contains(Integer.toString(bSessionPid));
            refused(c, new Attempt("SELECT pg_terminate_backend(" + bSessionPid + ")", "42501",
                    "permission denied to terminate process"));
            refused(c, new Attempt("SELECT pg_cancel_backend(" + bSessionPid + ")", "42501",
                    "permission denied to cancel query"));
        }
    }

    @Test
    void bQueryTextIsHidden() throws SQLException {
        queryStrings(bSession, "SELECT '" + B_QUERY_MARKER + "'");
        try (Connection other = PgUrls.connect(b.url())) {
            assertThat(queryStrings(other, "SELECT query FROM pg_stat_activity WHERE pid = " + bSessionPid))
                    .as("B sees its own query text").containsExactly("SELECT '" + B_QUERY_MARKER + "'");
        }
        try (Connection c = PgUrls.connect(a.url())) {
            List<String> texts = queryStrings(c, "SELECT coalesce(query, '<null>') FROM pg_stat_activity "
                    + "WHERE usename IS DISTINCT FROM current_user");
            assertThat(texts).as("query texts of others' sessions").isNotEmpty()
                    .allMatch(q -> q.equals("<insufficient privilege>") || q.equals("<null>"));
            assertThat(queryStrings(c, "SELECT count(*)::text FROM pg_stat_activity WHERE query LIKE '%"
                    + B_QUERY_MARKER.substring(0, 8) + "%' AND pid <> pg_backend_pid()")).containsExactly("0");
        }
    }

    @Test
    void noGrantsToB() throws SQLException {
        String guard = "privileges can only be granted within this database's own role";
        List<Attempt> attempts = new ArrayList<>(List.of(
                new Attempt("GRANT SELECT ON own TO " + b.role(), "42501", guard),
                new Attempt("GRANT SELECT (id) ON own TO " + b.role(), "42501", guard),
                new Attempt("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO " + b.role(), "42501", guard),
                new Attempt("ALTER DEFAULT PRIVILEGES GRANT ALL ON FUNCTIONS TO " + b.role(), "42501", guard),
                // a policy naming B's role would keep B's role from being dropped, like a grant
                new Attempt("CREATE POLICY p ON own TO " + b.role() + " USING (true)", "42501", guard),
                new Attempt("GRANT " + a.role() + " TO " + b.role(), "42501",
                        "permission denied to grant role \"" + a.role() + "\""),
                new Attempt("ALTER TABLE own OWNER TO " + b.role(), "42501",
                        "must be able to SET ROLE \"" + b.role() + "\""),
                new Attempt("REASSIGN OWNED BY CURRENT_USER TO " + b.role(), "42501",
                        "permission denied to reassign objects")));
        attempts.addAll(rungGrantAttempts());
        try (Connection c = PgUrls.connect(a.url())) {
            for (Attempt attempt : attempts) {
                refused(c, attempt);
            }
            assertThat(queryStrings(c, "SELECT has_table_privilege('" + b.role() + "', 'own', 'SELECT')::text"))
                    .containsExactly("false");
            assertThat(queryStrings(c, "SELECT count(*)::text FROM pg_default_acl "
                    + "WHERE defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)"))
                    .containsExactly("0");
            assertThat(queryStrings(c, "SELECT count(*)::text FROM pg_policy WHERE polrelid = 'own'::regclass"))
                    .containsExactly("0");
        }
    }

    @Test
    void noObjectsOutsideOwnSpace() throws SQLException {
        List<Attempt> attempts = new ArrayList<>(List.of(
                new Attempt("CREATE DATABASE palisade_probe", "42501", "permission denied to create database"),
                new Attempt("CREATE ROLE palisade_probe", "42501", "permission denied to create role"),
                new Attempt("CREATE EXTENSION dblink", "42501", "permission denied to create extension \"dblink\""),
                new Attempt("CREATE EXTENSION postgres_fdw", "42501",
                        "permission denied to create extension \"postgres_fdw\""),
                new Attempt("ALTER ROLE CURRENT_USER CREATEDB", "42501", "permission denied to alter role")));
        attempts.addAll(rungCreateAttempts());
        try (Connection c = PgUrls.connect(a.url())) {
            for (Attempt attempt : attempts) {
                refused(c, attempt);
            }
        }
    }

    // ---- limits ----

    @Test
    void connectionLimitIsTheTenantsOwn() throws SQLException {
        List<Connection> held = new ArrayList<>();
        try {
            held.add(PgUrls.connect(a.url()));
            int limit = queryInt(held.get(0), "SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user");
            assertThat(limit).as("A's role limit").isEqualTo(
                    TenantLimits.of(Plan.NANO, palisade.server().sharedServers().config()).connections());
            refused(held.get(0), new Attempt("ALTER ROLE CURRENT_USER CONNECTION LIMIT -1", "42501",
                    "permission denied to alter role"));
            SQLException refusal = null;
            while (refusal == null && held.size() <= limit) {
                try {
                    held.add(PgUrls.connect(a.url()));
                } catch (SQLException e) {
                    refusal = e;
                }
            }
            assertThat((Throwable) refusal).as("connection %d of A (limit %d)", held.size() + 1, limit).isNotNull();
            assertState(refusal, "53300", "too many connections for role \"" + a.role() + "\"");
            // A's own sessions of the tests before may take a moment to end
            assertThat(held).hasSizeBetween(limit - 2, limit);
            // at that moment B still connects
            try (Connection c = PgUrls.connect(b.url())) {
                assertThat(queryStrings(c, "SELECT secret FROM t")).containsExactly(B_SECRET);
            }
        } finally {
            for (Connection c : held) {
                c.close();
            }
        }
    }

    @Test
    void runawayStatementIsCutOff() throws SQLException {
        try (Connection c = PgUrls.connect(a.url()); Statement s = c.createStatement()) {
            long started = System.nanoTime();
            SQLException e = catchThrowableOfType(SQLException.class, () -> s.execute("SELECT pg_sleep(600)"));
            assertState(e, "57014", "canceling statement due to statement timeout");
            assertThat(elapsed(started)).isBetween(STATEMENT_LIMIT.minusMillis(100),
                    STATEMENT_LIMIT.plus(MONITOR_SLACK));

            // A turns its timeout off: palisade's monitor still cancels the statement soon after the limit
            long cutOffBefore = cutOff();
            s.execute("SET statement_timeout = 0");
            started = System.nanoTime();
            e = catchThrowableOfType(SQLException.class, () -> s.execute("SELECT pg_sleep(600)"));
            assertState(e, "57014", "canceling statement due to user request");
            assertThat(elapsed(started)).isBetween(STATEMENT_LIMIT, STATEMENT_LIMIT.plus(MONITOR_SLACK));
            await().atMost(Duration.ofSeconds(2)).until(() -> cutOff() > cutOffBefore);
            assertThat(queryInt(c, "SELECT 1")).as("the session survives a cancel").isEqualTo(1);
        }
    }

    @Test
    void idleTransactionIsEnded() throws SQLException {
        try (Connection c = PgUrls.connect(a.url())) {
            c.setAutoCommit(false);
            queryInt(c, "SELECT 1");
            Processes.sleep(IDLE_LIMIT.plusMillis(700));
            SQLException e = catchThrowableOfType(SQLException.class, () -> queryInt(c, "SELECT 1"));
            assertState(e, "25P03", "terminating connection due to idle-in-transaction timeout");
        }
        // A turns the timeout off: palisade's monitor ends the session soon after the limit
        try (Connection c = PgUrls.connect(a.url())) {
            try (Statement s = c.createStatement()) {
                s.execute("SET idle_in_transaction_session_timeout = 0");
            }
            long cutOffBefore = cutOff();
            c.setAutoCommit(false);
            queryInt(c, "SELECT 1");
            long started = System.nanoTime();
            await().atMost(IDLE_LIMIT.plus(MONITOR_SLACK)).pollInterval(Duration.ofMillis(100))
                    .until(() -> cutOff() > cutOffBefore);
            assertThat(elapsed(started)).isGreaterThanOrEqualTo(IDLE_LIMIT);
            Processes.sleep(Duration.ofMillis(300));
            SQLException e = catchThrowableOfType(SQLException.class, () -> queryInt(c, "SELECT 1"));
            assertState(e, "57P01", "terminating connection due to administrator command");
        }
    }

    // ---- helpers ----

    /** Sessions palisade's monitor has cut off since start. */
    private long cutOff() {
        return palisade.server().sharedServers().sessionsCutOff();
    }

    /** A {@code postgres://} URL to the proxy under {@code via}'s hostname, with another user, password or database. */
    protected static String login(Tenant via, String user, String password, String database) {
        URI uri = URI.create(via.url());
        return "postgres://" + enc(user) + ":" + enc(password) + "@" + uri.getHost() + ":" + uri.getPort() + "/"
                + enc(database) + "?" + uri.getRawQuery();
    }

    private static String enc(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }

    protected static Connection direct(int port, String user, String password, String database) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", user);
        properties.setProperty("password", password);
        properties.setProperty("sslmode", "disable");
        properties.setProperty("connectTimeout", "10");
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/" + database, properties);
    }

    protected interface Opener {
        Connection open() throws SQLException;
    }

    protected static SQLException connectFails(String url) {
        return connectFails(() -> PgUrls.connect(url));
    }

    protected static SQLException connectFails(Opener opener) {
        try (Connection c = opener.open()) {
            String who = queryStrings(c, "SELECT current_user || '@' || current_database()").get(0);
            throw new AssertionError("connected as " + who + " where the login must be refused");
        } catch (SQLException e) {
            return e;
        }
    }

    private static SQLException connectFails(int port, String user, String password, String database) {
        return connectFails(() -> direct(port, user, password, database));
    }

    /** Runs A's attempt, which must fail as expected; the session stays usable. */
    protected static void refused(Connection c, Attempt attempt) throws SQLException {
        c.setAutoCommit(!attempt.inTransaction());
        SQLException e;
        try (Statement s = c.createStatement()) {
            e = catchThrowableOfType(SQLException.class, () -> s.execute(attempt.sql()));
        } finally {
            if (attempt.inTransaction()) {
                c.rollback();
                c.setAutoCommit(true);
            }
        }
        assertThat((Throwable) e).as("A's attempt must fail: %s", attempt.sql()).isNotNull();
        assertThat(e.getSQLState()).as("SQLSTATE of %s (%s)", attempt.sql(), e.getMessage())
                .isEqualTo(attempt.sqlState());
        assertThat(e.getMessage()).as("refusal of %s", attempt.sql()).contains(attempt.message());
    }

    protected static void assertState(SQLException e, String sqlState, String message) {
        assertThat((Throwable) e).as("expected %s: %s", sqlState, message).isNotNull();
        assertThat(e.getSQLState()).as("SQLSTATE of: %s", e.getMessage()).isEqualTo(sqlState);
        assertThat(e.getMessage()).contains(message);
    }

    protected static int queryInt(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static List<String> queryStrings(Connection c, String sql) throws SQLException {
        List<String> values = new ArrayList<>();
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            while (rs.next()) {
                values.add(rs.getString(1));
            }
        }
        return values;
    }

    private static Duration elapsed(long startedNanos) {
        return Duration.ofNanos(System.nanoTime() - startedNanos);
    }
}
