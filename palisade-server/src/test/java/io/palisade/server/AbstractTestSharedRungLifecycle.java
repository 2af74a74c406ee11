package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.agent.shared.SharedServerPool;
import io.palisade.host.Processes;
import io.palisade.spi.ServerLogin;
import io.palisade.store.SecretBox;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The lifecycle of a shared-rung tenant through a full palisade, as a client and an operator see it: the schema corpus
 * runs as the tenant through the proxy; create, rotate, stats, logs, suspend (refused), ephemeral TTL and delete; a
 * control-plane restart; a SIGKILL of the shared server under load. Internal names are checked on the shared server
 * itself over a management connection. One subclass per shared rung.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class AbstractTestSharedRungLifecycle {
    private TestingPalisade palisade;
    /** Two long-lived tenants on the same shared server, each with a table {@code keep} holding one marker row. */
    private JsonNode a;
    private JsonNode b;

    /** The rung every tenant of this class lives on. */
    protected abstract String isolation();

    /**
     * Where the tenant's own container (its database, or its schema in the shared database) is listed on the shared
     * server: the database to ask in, and a query that returns its name while it exists.
     */
    protected abstract Container container(String serverUser);

    protected record Container(String database, String sql) {}

    @BeforeAll
    void start() throws SQLException {
        palisade = TestingPalisade.requiring(isolation(), Map.of("agent.reconcile-interval", "500ms"));
        a = create("tenant-a", "");
        b = create("tenant-b", "");
        for (JsonNode tenant : List.of(a, b)) {
            execute(url(tenant), "CREATE TABLE keep (marker text); INSERT INTO keep VALUES ('" + id(tenant) + "')");
        }
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.delete("/v1/databases/" + id(a));
            palisade.delete("/v1/databases/" + id(b));
            palisade.close();
        }
    }

    @Test
    void schemaCorpusRunsAsTheTenantAndDeleteLeavesNothing() throws SQLException {
        JsonNode tenant = create("corpus", "");
        Processes.Result result = Processes.run(List.of("psql", url(tenant), "-v", "ON_ERROR_STOP=1", "-qAt", "-f",
                BackupChecks.corpusFile().toString()), Duration.ofMinutes(2), null);
        assertThat(result.exitCode()).as(result.output()).isZero();

        String url = url(tenant);
        assertThat(scalar(url, "SELECT count(*) FROM customers WHERE email = 'ADA@Example.com'")).as("citext")
                .isEqualTo("1");
        assertThat(scalar(url, "SELECT order_total(1)")).isEqualTo("2500");
        assertThat(scalar(url, "SELECT attrs -> 'tier' FROM customers WHERE id = 1")).as("hstore").isEqualTo("gold");
        assertThat(scalar(url, "SELECT name FROM customers ORDER BY similarity(name, 'Ada Lovelac') DESC LIMIT 1"))
                .as("pg_trgm").isEqualTo("Ada Lovelace");
        assertThat(scalar(url, "SELECT string_agg(status || '=' || n, ',' ORDER BY status) FROM revenue_by_status"))
                .isEqualTo("new=1,paid=1,shipped=1");
        assertThat(scalar(url, "SELECT count(*) FROM events")).isEqualTo("3");
        assertThat(scalar(url, "SELECT count(*) FROM audit_orders")).as("trigger").isEqualTo("3");
        assertThat(scalar(url, "SELECT convert_from(lo_get(max(oid)), 'UTF8') FROM pg_largeobject_metadata"
                + " WHERE lomowner = current_user::regrole")).isEqualTo("large object payload");
        // every object landed in the tenant's own schema (public on the database rung, its own on the schema rung)
        assertThat(scalar(url, "SELECT string_agg(DISTINCT n.nspname, ',') FROM pg_class c JOIN pg_namespace n"
                + " ON n.oid = c.relnamespace WHERE c.relname IN ('customers', 'orders', 'scratch', 'paid_orders')"))
                .isEqualTo(scalar(url, "SELECT current_schema()"));

        assertDeletedWithoutTrace(tenant);
    }

    @Test
    void createdTenantRunsOnItsRung() throws SQLException {
        JsonNode got = palisade.get("/v1/databases/" + id(a)).json();
        assertThat(got.path("isolation").asText()).as(got.toString()).isEqualTo(isolation());
        assertThat(got.path("status").asText()).isEqualTo("running");
        assertThat(a.path("username").asText()).isEqualTo("app");
        assertThat(url(a)).startsWith("postgres://app:").contains("@" + id(a) + ".db.localhost:");
        assertThat(java.net.URI.create(url(a)).getPath()).isEqualTo("/app");
        assertThat(scalar(url(a), "SELECT current_database() <> 'app'")).as("internal names stay inside")
                .isEqualTo("t");
        assertThat(palisade.server().sharedServers().serverOf(id(a))).isPresent()
                .isEqualTo(palisade.server().sharedServers().serverOf(id(b)));
    }

    @Test
    void rotatedCredentialsReplaceTheOldOnesThroughTheProxy() throws SQLException {
        JsonNode tenant = create("rotate", "");
        try {
            execute(url(tenant), "CREATE TABLE survives (x int); INSERT INTO survives VALUES (42)");
            TestingPalisade.Response rotated =
                    palisade.post("/v1/databases/" + id(tenant) + "/credentials/rotate", null);
            assertThat(rotated.status()).as(rotated.body()).isEqualTo(200);
            String newUrl = rotated.json().get("connection_url").asText();
            assertThat(rotated.json().get("password").asText()).isNotEqualTo(tenant.get("password").asText());
            assertThatThrownBy(() -> PgUrls.connect(url(tenant)).close()).isInstanceOf(SQLException.class)
                    .hasMessageContaining("password authentication failed");
            assertThat(scalar(newUrl, "SELECT x FROM survives")).isEqualTo("42");
            Processes.Result psql = psql(newUrl, "SELECT x FROM survives");
            assertThat(psql.exitCode()).as(psql.output()).isZero();
            assertThat(psql.output().strip()).isEqualTo("42");
            Processes.Result old = psql(url(tenant), "SELECT 1");
            assertThat(old.exitCode()).isNotZero();
            assertThat(old.output()).contains("password authentication failed for user \"app\"");
        } finally {
            palisade.delete("/v1/databases/" + id(tenant));
        }
    }

    @Test
    void statsSizeGrowsWithTheTenantsData() throws SQLException {
        JsonNode tenant = create("stats", "");
        try {
            JsonNode before = palisade.get("/v1/databases/" + id(tenant) + "/stats").json();
            assertThat(before.path("running").asBoolean()).as(before.toString()).isTrue();
            long sizeBefore = before.path("disk_bytes").asLong();
            assertThat(sizeBefore).as(before.toString()).isNotNegative();
            execute(url(tenant), "CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g");
            await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
                JsonNode after = palisade.get("/v1/databases/" + id(tenant) + "/stats").json();
                assertThat(after.path("disk_bytes").asLong()).as(after.toString())
                        .isGreaterThanOrEqualTo(sizeBefore + 2_000_000);
            });
            // the size is the tenant's own: another tenant's data does not count
            long aSize = palisade.get("/v1/databases/" + id(a) + "/stats").json().path("disk_bytes").asLong();
            assertThat(aSize).isLessThan(palisade.get("/v1/databases/" + id(tenant) + "/stats").json()
                    .path("disk_bytes").asLong());
        } finally {
            palisade.delete("/v1/databases/" + id(tenant));
        }
    }

    @Test
    void logsShowTheTenantsOwnLinesOnly() {
        String markerA = "marker-a-" + SecretBox.randomSecret(8).toLowerCase(Locale.ROOT);
        String markerB = "marker-b-" + SecretBox.randomSecret(8).toLowerCase(Locale.ROOT);
        raise(url(a), markerA);
        raise(url(b), markerB);
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
            String aLogs = logs(a);
            String bLogs = logs(b);
            assertThat(aLogs).contains(markerA).doesNotContain(markerB);
            assertThat(bLogs).contains(markerB).doesNotContain(markerA);
        });
        String bRole = serverLogin(id(b)).user();
        assertThat(logs(a)).as("A's logs name nothing of B").doesNotContain(bRole).doesNotContain(id(b));
    }

    @Test
    void suspendIsRefusedBecauseTheRungDoesNotSuspend() throws SQLException {
        TestingPalisade.Response suspend = palisade.post("/v1/databases/" + id(a) + "/suspend", null);
        assertThat(suspend.status()).as(suspend.body()).isEqualTo(409);
        assertThat(suspend.contentType()).startsWith("application/problem+json");
        assertThat(suspend.json().path("detail").asText()).contains(isolation() + " rung").contains("cannot suspend")
                .contains("an idle tenant holds no process or memory of its own");
        assertThat(palisade.get("/v1/databases/" + id(a)).json().path("status").asText()).isEqualTo("running");
        assertThat(scalar(url(a), "SELECT marker FROM keep")).isEqualTo(id(a));
    }

    @Test
    void ephemeralTenantIsReapedWhenItsTtlRunsOut() throws SQLException {
        JsonNode tenant = create("preview", ",\"persistent\":false,\"ttl_seconds\":2");
        assertThat(tenant.path("persistent").asBoolean()).isFalse();
        assertThat(tenant.path("ttl_seconds").asInt()).isEqualTo(2);
        ServerLogin login = serverLogin(id(tenant));
        String server = palisade.server().sharedServers().serverOf(id(tenant)).orElseThrow();
        assertThat(scalar(url(tenant), "SELECT 1")).isEqualTo("1");
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(250)).until(() ->
                palisade.get("/v1/databases/" + id(tenant)).status() == 404);
        assertThat(manage(server, "postgres", "SELECT rolname FROM pg_roles WHERE rolname = '" + login.user() + "'"))
                .isEmpty();
        Container container = container(login.user());
        assertThat(manage(server, container.database(), container.sql())).isEmpty();
    }

    @Test
    void tenantsKeepTheirDataAcrossAControlPlaneRestart() throws SQLException {
        execute(url(a), "INSERT INTO keep VALUES ('before-restart')");
        palisade.restart();
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(250)).ignoreExceptions()
                .untilAsserted(() -> {
                    assertThat(scalar(url(a), "SELECT string_agg(marker, ',' ORDER BY marker) FROM keep"))
                            .isEqualTo("before-restart," + id(a));
                    assertThat(scalar(url(b), "SELECT marker FROM keep")).isEqualTo(id(b));
                });
        assertThat(palisade.get("/v1/databases/" + id(a)).json().path("status").asText()).isEqualTo("running");
        execute(url(a), "DELETE FROM keep WHERE marker = 'before-restart'");
    }

    /**
     * SIGKILL of the postmaster while B runs a CPU-bound statement: its orphaned backend keeps running (it notices the
     * dead postmaster only when it next waits) and holds the old shared memory, yet the tenants come back well before
     * B's statement_timeout would have ended that backend.
     */
    @Test
    void tenantsComeBackAfterTheSharedServerIsKilled() throws Exception {
        SharedServerPool pool = palisade.server().sharedServers();
        String server = pool.serverOf(id(a)).orElseThrow();
        int crashesBefore = pool.outages().size();
        String bRole = serverLogin(id(b)).user();
        CompletableFuture<Void> runaway = CompletableFuture.runAsync(() -> {
            try {
                execute(url(b), "DO $$ BEGIN LOOP END LOOP; END $$");
            } catch (SQLException expected) {
                // the server went away under it
            }
        });
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(50)).until(() -> !manage(server,
                "postgres", "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND usename = '" + bRole + "'")
                .isEmpty());
        Instant killed = Instant.now();
        pool.crash(server);

        await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(100)).ignoreExceptions()
                .untilAsserted(() -> {
                    assertThat(scalar(url(a), "SELECT marker FROM keep")).isEqualTo(id(a));
                    assertThat(scalar(url(b), "SELECT marker FROM keep")).isEqualTo(id(b));
                });
        System.out.printf("%s: tenants answer again %d ms after SIGKILL%n", isolation(),
                Duration.between(killed, Instant.now()).toMillis());
        runaway.get(60, java.util.concurrent.TimeUnit.SECONDS);
        for (JsonNode tenant : List.of(a, b)) {
            assertThat(palisade.get("/v1/databases/" + id(tenant)).json().path("status").asText()).isEqualTo("running");
        }

        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
            assertThat(pool.outages()).hasSizeGreaterThan(crashesBefore);
            JsonNode crashes = palisade.request("GET", "/v1/health", null, null).json().path("shared_servers")
                    .path("recent_crashes");
            assertThat(crashes).as(crashes.toString()).isNotEmpty();
            JsonNode latest = crashes.get(0);
            assertThat(latest.path("server").asText()).isEqualTo(server);
            assertThat(latest.path("tenants_affected").asInt()).isGreaterThanOrEqualTo(2);
            assertThat(latest.has("downtime_ms")).as(latest.toString()).isTrue();
            assertThat(latest.path("downtime_ms").asLong()).isPositive().isLessThan(20_000);
            // the outage was noticed after the kill and before the new postmaster started, and lasts past its start
            Instant noticed = Instant.parse(latest.path("at").asText());
            Instant restarted = Instant.ofEpochMilli(Math.round(1000 * Double.parseDouble(manage(server, "postgres",
                    "SELECT extract(epoch FROM pg_postmaster_start_time())").getFirst())));
            assertThat(noticed).isBetween(killed, restarted);
            assertThat(noticed.plusMillis(latest.path("downtime_ms").asLong())).isAfterOrEqualTo(restarted);
            String metrics = palisade.get("/metrics").body();
            assertThat(metrics).containsPattern("(?m)^palisade_shared_server_crashes_total(\\{[^}]*})? [1-9]");
        });
    }

    @Test
    void deleteDropsEverythingAndTheUrlThenLooksUnknown() throws SQLException {
        JsonNode tenant = create("doomed", "");
        execute(url(tenant), "CREATE TABLE t (x int); INSERT INTO t VALUES (1); CREATE FUNCTION f() RETURNS int"
                + " LANGUAGE sql AS 'SELECT 1'; SELECT lo_from_bytea(0, 'x'::bytea)");
        assertDeletedWithoutTrace(tenant);
        assertThat(palisade.get("/v1/databases/" + id(tenant)).status()).isEqualTo(404);
        Processes.Result again = psql(url(tenant), "SELECT 1");
        Processes.Result unknown = psql(url(tenant).replace(id(tenant) + ".db.localhost", "db-nothere1.db.localhost"),
                "SELECT 1");
        assertThat(again.exitCode()).isNotZero();
        assertThat(again.output()).contains("password authentication failed for user \"app\"");
        assertThat(again.output().replace(id(tenant), "<id>").strip())
                .isEqualTo(unknown.output().replace("db-nothere1", "<id>").strip());
    }

    /** Deletes through the API, then checks on the shared server that the role and all it owned or was granted went. */
    private void assertDeletedWithoutTrace(JsonNode tenant) {
        ServerLogin login = serverLogin(id(tenant));
        String server = palisade.server().sharedServers().serverOf(id(tenant)).orElseThrow();
        Container container = container(login.user());
        assertThat(manage(server, container.database(), container.sql())).as("the tenant's container before delete")
                .containsExactly(login.user());
        String oid = manage(server, "postgres", "SELECT oid FROM pg_roles WHERE rolname = '" + login.user() + "'")
                .getFirst();
        assertThat(manage(server, "postgres", "SELECT count(*) FROM pg_shdepend WHERE refobjid = " + oid).getFirst())
                .as("the tenant owns objects before delete").isNotEqualTo("0");

        TestingPalisade.Response deleted = palisade.delete("/v1/databases/" + id(tenant));
        assertThat(deleted.status()).as(deleted.body()).isEqualTo(204);

        assertThat(manage(server, "postgres", "SELECT rolname FROM pg_roles WHERE rolname = '" + login.user() + "'"))
                .as("role").isEmpty();
        assertThat(manage(server, container.database(), container.sql())).as("database or schema").isEmpty();
        assertThat(manage(server, "postgres", "SELECT classid::regclass || ' ' || objid FROM pg_shdepend"
                + " WHERE refobjid = " + oid)).as("owned objects and grants left behind").isEmpty();
        assertThat(manage(server, "tenants", "SELECT oid FROM pg_largeobject_metadata WHERE lomowner = " + oid))
                .as("large objects").isEmpty();
        assertThat(palisade.server().sharedServers().serverOf(id(tenant))).isEmpty();
    }

    private JsonNode create(String label, String extraFields) {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"" + label + "\",\"isolation\":\"" + isolation() + "\"" + extraFields + "}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        return created.json();
    }

    private ServerLogin serverLogin(String id) {
        return palisade.server().store().find(id).orElseThrow().serverLogin().orElseThrow();
    }

    private List<String> manage(String server, String database, String sql) {
        return palisade.server().sharedServers().query(server, database, sql);
    }

    private String logs(JsonNode tenant) {
        TestingPalisade.Response logs = palisade.get("/v1/databases/" + id(tenant) + "/logs?lines=1000");
        assertThat(logs.status()).as(logs.body()).isEqualTo(200);
        return logs.json().path("lines").toString();
    }

    private static void raise(String url, String marker) {
        assertThatThrownBy(() -> execute(url, "DO $$ BEGIN RAISE EXCEPTION '" + marker + "'; END $$"))
                .isInstanceOf(SQLException.class).hasMessageContaining(marker);
    }

    private static String id(JsonNode tenant) {
        return tenant.get("id").asText();
    }

    private static String url(JsonNode tenant) {
        return tenant.get("connection_url").asText();
    }

    private static Processes.Result psql(String url, String sql) {
        return Processes.run(List.of("psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql), Duration.ofSeconds(30),
                null);
    }

    private static String scalar(String url, String sql) throws SQLException {
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(sql)) {
            assertThat(rs.next()).as("a row from %s", sql).isTrue();
            return rs.getString(1);
        }
    }

    private static void execute(String url, String sql) throws SQLException {
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }
}
