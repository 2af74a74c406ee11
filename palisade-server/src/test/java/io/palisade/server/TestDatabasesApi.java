package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The walking skeleton end to end: REST API → store → process driver → real PostgreSQL, with PgJDBC and psql. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestDatabasesApi {
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = new TestingPalisade();
    }

    @AfterAll
    void stop() {
        List<String> left = palisade.server().store().list("acct-admin").stream().map(r -> r.id()).toList();
        left.forEach(id -> palisade.delete("/v1/databases/" + id));
        palisade.close();
        assertThat(left).as("databases left behind by tests").isEmpty();
    }

    private JsonNode create(String body) {
        TestingPalisade.Response response = palisade.post("/v1/databases", body);
        assertThat(response.status()).as(response.body()).isEqualTo(201);
        return response.json();
    }

    @Test
    void createUseRestartAndDelete() throws Exception {
        JsonNode db = create("{\"label\":\"tenant-acme-prod\"}");
        String id = db.get("id").asText();
        assertThat(id).matches("db-[a-z0-9]{8}");
        assertThat(db.get("status").asText()).isEqualTo("running");
        assertThat(db.get("label").asText()).isEqualTo("tenant-acme-prod");
        assertThat(db.get("isolation").asText()).isEqualTo("process");
        assertThat(db.get("version").asText()).isEqualTo("16");
        assertThat(db.get("persistent").asBoolean()).isTrue();
        for (String field : List.of("host", "port", "database", "username", "password", "connection_url", "broker_url",
                "broker_token", "created_at")) {
            assertThat(db.hasNonNull(field)).as("field %s in %s", field, db).isTrue();
        }
        assertThat(db.get("created_at").asText()).contains("T");
        String url = db.get("connection_url").asText();

        // psql with the URL exactly as returned
        Processes.Result psql = Processes.run(
                List.of("psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c",
                        "CREATE TABLE orders (id int PRIMARY KEY, item text); "
                                + "INSERT INTO orders VALUES (1, 'anvil'), (2, 'rocket'); SELECT count(*) FROM orders;"),
                Duration.ofSeconds(30), null);
        assertThat(psql.exitCode()).as(psql.output()).isZero();
        assertThat(psql.output().strip()).isEqualTo("2");

        // PgJDBC sees the same rows; the tenant is not a superuser
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement()) {
            try (ResultSet rs = s.executeQuery("SELECT item FROM orders ORDER BY id")) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getString(1)).isEqualTo("anvil");
            }
            try (ResultSet rs = s.executeQuery("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")) {
                rs.next();
                assertThat(rs.getBoolean(1)).isFalse();
            }
            assertThatThrownBy(() -> s.execute("COPY orders TO PROGRAM 'cat'"))
                    .isInstanceOf(SQLException.class)
                    .hasMessageContaining("permission denied");
        }

        // the list never shows secrets
        TestingPalisade.Response list = palisade.get("/v1/databases");
        assertThat(list.status()).isEqualTo(200);
        assertThat(list.body()).contains(id).doesNotContain(db.get("password").asText())
                .doesNotContain(db.get("broker_token").asText());
        assertThat(palisade.get("/v1/databases/" + id).body()).doesNotContain(db.get("password").asText());

        // restart palisade: the database comes back with its data and the same URL
        palisade.restart();
        JsonNode after = palisade.get("/v1/databases/" + id).json();
        assertThat(after.get("status").asText()).isEqualTo("running");
        JsonNode connection = palisade.get("/v1/databases/" + id + "/connection").json();
        assertThat(connection.get("connection_url").asText()).isEqualTo(url);
        try (Connection c = PgUrls.connect(connection.get("connection_url").asText());
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM orders")) {
            rs.next();
            assertThat(rs.getInt(1)).isEqualTo(2);
        }

        // delete leaves nothing: API, process table, files, cgroup, socket dir
        long pid = palisade.server().service().stats("acct-admin", id).pid();
        assertThat(pid).isPositive();
        Path instanceDir = palisade.dataDir().resolve("instances/process").resolve(id);
        assertThat(instanceDir).exists();
        TestingPalisade.Response deleted = palisade.delete("/v1/databases/" + id);
        assertThat(deleted.status()).isEqualTo(204);
        assertThat(palisade.get("/v1/databases/" + id).status()).isEqualTo(404);
        assertThat(Files.exists(instanceDir)).isFalse();
        assertThat(Files.readString(Path.of("/proc/self/mountinfo"))).as("mounts of the deleted instance")
                .doesNotContain(instanceDir.toString());
        assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)).isFalse();
        assertThat(Path.of("/sys/fs/cgroup/cpu/palisade-test").resolve(
                io.palisade.agent.ProcessDriver.cgroupPrefix(palisade.dataDir().resolve("instances/process")) + id))
                .doesNotExist();
        assertThat(io.palisade.host.PostgresServer.socketDirFor(id)).doesNotExist();
        assertThatThrownBy(() -> PgUrls.connect(url).close()).isInstanceOf(SQLException.class);
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(404);
    }

    @Test
    void tenantsAndAccountsAreIsolated() throws Exception {
        JsonNode a = create("{\"label\":\"tenant-a\"}");
        JsonNode b = create("{\"label\":\"tenant-b\"}");
        try {
            // A's password does not open B
            assertThatThrownBy(() -> PgUrls.connect(b.get("connection_url").asText(), a.get("password").asText()).close())
                    .isInstanceOf(SQLException.class)
                    .hasMessageContaining("password authentication failed");
            // another account's database is a 404, exactly like a missing one
            String otherKey = palisade.newAccount("other");
            TestingPalisade.Response foreign = palisade.request("GET", "/v1/databases/" + a.get("id").asText(), null, otherKey);
            TestingPalisade.Response missing = palisade.request("GET", "/v1/databases/db-zzzzzzzz", null, otherKey);
            assertThat(foreign.status()).isEqualTo(404);
            assertThat(missing.status()).isEqualTo(404);
            assertThat(foreign.json().get("title").asText()).isEqualTo(missing.json().get("title").asText());
            assertThat(palisade.request("DELETE", "/v1/databases/" + a.get("id").asText(), null, otherKey).status())
                    .isEqualTo(404);
            assertThat(palisade.request("GET", "/v1/databases", null, otherKey).json().get("databases")).isEmpty();
        } finally {
            palisade.delete("/v1/databases/" + a.get("id").asText());
            palisade.delete("/v1/databases/" + b.get("id").asText());
        }
    }

    @Test
    void credentialRotationAndRestart() throws Exception {
        JsonNode db = create("{}");
        String id = db.get("id").asText();
        try {
            TestingPalisade.Response rotated = palisade.post("/v1/databases/" + id + "/credentials/rotate", null);
            assertThat(rotated.status()).as(rotated.body()).isEqualTo(200);
            assertThat(rotated.json().get("password").asText()).isNotEqualTo(db.get("password").asText());
            assertThat(rotated.json().get("broker_token").asText()).isNotEqualTo(db.get("broker_token").asText());
            assertThatThrownBy(() -> PgUrls.connect(db.get("connection_url").asText()).close())
                    .isInstanceOf(SQLException.class);
            try (Connection c = PgUrls.connect(rotated.json().get("connection_url").asText())) {
                assertThat(c.isValid(5)).isTrue();
            }
            TestingPalisade.Response restarted = palisade.post("/v1/databases/" + id + "/restart", null);
            assertThat(restarted.status()).as(restarted.body()).isEqualTo(200);
            try (Connection c = PgUrls.connect(rotated.json().get("connection_url").asText())) {
                assertThat(c.isValid(5)).isTrue();
            }
            JsonNode stats = palisade.get("/v1/databases/" + id + "/stats").json();
            assertThat(stats.get("running").asBoolean()).isTrue();
            assertThat(stats.get("disk_bytes").asLong()).isPositive();
            JsonNode logs = palisade.get("/v1/databases/" + id + "/logs?lines=50").json();
            assertThat(logs.get("lines")).isNotEmpty();
        } finally {
            palisade.delete("/v1/databases/" + id);
        }
    }

    /**
     * The proxy hands a clean client's backend to the next client of the same login, and the API's rotation and
     * restart close what it parked: no backend logged in before either serves a client after it.
     */
    @Test
    void proxyReusesBackendsUntilRotationOrRestart() throws Exception {
        JsonNode db = create("{}");
        String id = db.get("id").asText();
        try {
            String url = db.get("connection_url").asText();
            // consecutive clients may land on different event loops (one pool partition each): by the pigeonhole
            // principle a pid repeats within one more connection than there are loops
            java.util.Set<Integer> pids = new java.util.LinkedHashSet<>();
            int repeated = -1;
            int loops = palisade.server().proxyIoThreads();
            for (int i = 0; i <= loops && repeated < 0; i++) {
                try (Connection c = PgUrls.connect(url)) {
                    int pid = pid(c);
                    if (!pids.add(pid)) {
                        repeated = pid;
                    }
                }
                org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10))
                        .until(() -> palisade.server().proxyIdleBackends(id) > 0);
            }
            assertThat(repeated).as("a backend pid served two clients: %s", pids).isPositive();
            TestingPalisade.Response rotated = palisade.post("/v1/databases/" + id + "/credentials/rotate", null);
            assertThat(rotated.status()).as(rotated.body()).isEqualTo(200);
            String rotatedUrl = rotated.json().get("connection_url").asText();
            try (Connection c = PgUrls.connect(rotatedUrl)) {
                assertThat(pids).doesNotContain(pid(c));
                org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).until(() ->
                        alive(c, pids) == 0);
                pids.add(pid(c));
            }
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10))
                    .until(() -> palisade.server().proxyIdleBackends(id) > 0);
            TestingPalisade.Response restarted = palisade.post("/v1/databases/" + id + "/restart", null);
            assertThat(restarted.status()).as(restarted.body()).isEqualTo(200);
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10))
                    .until(() -> palisade.server().proxyIdleBackends(id) == 0);
            try (Connection c = PgUrls.connect(rotatedUrl)) {
                assertThat(pids).doesNotContain(pid(c));
            }
        } finally {
            palisade.delete("/v1/databases/" + id);
        }
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(
                palisade.server().proxyIdleBackends(id)).as("nothing parked for a deleted database").isZero());
    }

    private static int pid(Connection c) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT pg_backend_pid()")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static int alive(Connection c, java.util.Set<Integer> pids) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_stat_activity"
                + " WHERE pid IN (" + String.join(",", pids.stream().map(String::valueOf).toList()) + ")")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    @Test
    void badInputGetsProblemDetails() {
        Map<String, String> cases = Map.of(
                "{\"label\":", "malformed JSON",
                "{\"label\":\"x\",\"colour\":\"red\"}", "unknown field 'colour'",
                "{\"cpu\":\"two\"}", "field 'cpu' must be an integer",
                "{\"label\":42}", "field 'label' must be a string",
                "{\"label\":\"\"}", "label must not be empty",
                "{\"label\":\"" + "x".repeat(64) + "\"}", "limit is 63",
                "{\"isolation\":\"submarine\"}", "unknown isolation 'submarine'",
                "{\"version\":\"9\"}", "unsupported PostgreSQL version '9'",
                "{\"ttl_seconds\":600,\"persistent\":true}", "ttl_seconds applies only to ephemeral",
                "[1,2]", "must be a JSON object");
        cases.forEach((body, expected) -> {
            TestingPalisade.Response response = palisade.post("/v1/databases", body);
            assertThat(response.status()).as(body).isEqualTo(400);
            assertThat(response.contentType()).startsWith("application/problem+json");
            JsonNode problem = response.json();
            assertThat(problem.get("status").asInt()).isEqualTo(400);
            assertThat(problem.get("code").asText()).isEqualTo("invalid-request");
            assertThat(problem.get("detail").asText()).as(body).contains(expected);
            assertThat(response.body()).doesNotContain("Exception").doesNotContain("at io.");
        });

        TestingPalisade.Response tooLarge = palisade.post("/v1/databases", "{\"label\":\"" + "a".repeat(100_000) + "\"}");
        assertThat(tooLarge.status()).isEqualTo(413);
        assertThat(tooLarge.contentType()).startsWith("application/problem+json");

        TestingPalisade.Response unknown = palisade.get("/v1/databases/db-nothere1");
        assertThat(unknown.status()).isEqualTo(404);
        assertThat(unknown.contentType()).startsWith("application/problem+json");

        TestingPalisade.Response noKey = palisade.request("GET", "/v1/databases", null, null);
        assertThat(noKey.status()).isEqualTo(401);
        assertThat(noKey.json().get("detail").asText()).contains("Authorization: Bearer");
        TestingPalisade.Response badKey = palisade.request("POST", "/v1/databases", "{}", "pk_wrong_key_123456");
        assertThat(badKey.status()).isEqualTo(401);
        assertThat(badKey.contentType()).startsWith("application/problem+json");

        TestingPalisade.Response noRoute = palisade.get("/v2/elsewhere");
        assertThat(noRoute.status()).isEqualTo(404);
        assertThat(noRoute.contentType()).startsWith("application/problem+json");
        assertThat(palisade.server().store().list("acct-admin")).as("bad input created nothing").isEmpty();
    }

    @Test
    void reaperDeletesExpiredEphemeralDatabasesOnly() throws Exception {
        JsonNode ephemeral = create("{\"label\":\"preview-42\",\"persistent\":false,\"ttl_seconds\":3600}");
        JsonNode persistent = create("{\"label\":\"keeper\"}");
        assertThat(ephemeral.get("persistent").asBoolean()).isFalse();
        assertThat(ephemeral.get("ttl_seconds").asInt()).isEqualTo(3600);
        assertThat(ephemeral.hasNonNull("expires_at")).isTrue();
        String id = ephemeral.get("id").asText();
        Path instanceDir = palisade.dataDir().resolve("instances/process").resolve(id);
        try {
            assertThat(palisade.server().service().reapExpired(java.time.Instant.now())).as("not yet expired").isEmpty();
            List<String> reaped = palisade.server().service().reapExpired(java.time.Instant.now().plusSeconds(3601));
            assertThat(reaped).containsExactly(id);
            assertThat(palisade.get("/v1/databases/" + id).status()).isEqualTo(404);
            assertThat(instanceDir).doesNotExist();
            assertThat(palisade.get("/v1/databases/" + persistent.get("id").asText()).json().get("status").asText())
                    .isEqualTo("running");
            assertThat(palisade.server().service().reapExpired(java.time.Instant.now().plusSeconds(7200)))
                    .as("persistent databases are never reaped").isEmpty();
        } finally {
            palisade.delete("/v1/databases/" + persistent.get("id").asText());
            palisade.delete("/v1/databases/" + id);
        }
    }

    @Test
    void brokerRoutesUseTheReturnedUrlAndToken() throws Exception {
        JsonNode a = create("{\"label\":\"broker-a\"}");
        JsonNode b = create("{\"label\":\"broker-b\"}");
        try {
            String brokerUrl = a.get("broker_url").asText();
            assertThat(brokerUrl).isEqualTo(palisade.apiUrl() + "/v1/databases/" + a.get("id").asText() + "/proxy");
            assertThat(a.get("template").asText()).isEqualTo("postgres-16");
            var http = java.net.http.HttpClient.newHttpClient();
            java.util.function.BiFunction<String, String, java.net.http.HttpResponse<String>> query = (token, sql) -> {
                try {
                    return http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(brokerUrl + "/v1/query"))
                            .header("Authorization", "Bearer " + token)
                            .POST(java.net.http.HttpRequest.BodyPublishers.ofString(
                                    "{\"database\":\"pandastack\",\"sql\":\"" + sql + "\",\"params\":[41]}"))
                            .build(), java.net.http.HttpResponse.BodyHandlers.ofString());
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            };
            var ok = query.apply(a.get("broker_token").asText(), "SELECT $1::int + 1 AS answer");
            assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
            assertThat(ok.body()).contains("\"rows\":[[42]]");
            // B's token on A, and a made-up token, are refused identically
            var foreign = query.apply(b.get("broker_token").asText(), "SELECT $1::int");
            var invented = query.apply("pbt_invented", "SELECT $1::int");
            assertThat(foreign.statusCode()).isEqualTo(401);
            assertThat(foreign.body()).isEqualTo(invented.body());
            // rotation invalidates the old token at once
            palisade.post("/v1/databases/" + a.get("id").asText() + "/credentials/rotate", null);
            assertThat(query.apply(a.get("broker_token").asText(), "SELECT $1::int").statusCode()).isEqualTo(401);
        } finally {
            palisade.delete("/v1/databases/" + a.get("id").asText());
            palisade.delete("/v1/databases/" + b.get("id").asText());
        }
    }

    @Test
    void healthListsEveryRung() {
        TestingPalisade.Response health = palisade.request("GET", "/v1/health", null, null);
        assertThat(health.status()).isEqualTo(200);
        JsonNode body = health.json();
        assertThat(body.get("status").asText()).isEqualTo("ok");
        assertThat(body.get("default_isolation").asText()).isNotEmpty();
        assertThat(body.get("isolation").findValuesAsText("name")).contains("process");
        // whether a process tenant's disk is capped is a fact of the host, never silent
        JsonNode process = null;
        for (JsonNode probe : body.get("isolation")) {
            if (probe.get("name").asText().equals("process")) {
                process = probe;
            }
        }
        assertThat(process.get("reason").asText()).containsPattern("disk_enforced: (true|false)");
        if (ServiceUser.currentUid() == 0 && Files.exists(Path.of("/dev/loop-control"))) {
            assertThat(process.get("reason").asText()).contains("disk_enforced: true");
        }
        TestingPalisade.Response metrics = palisade.get("/metrics");
        assertThat(metrics.status()).isEqualTo(200);
        assertThat(metrics.body()).contains("palisade_databases{state=\"running\"}").contains("jvm_memory_used_bytes");
    }
}
