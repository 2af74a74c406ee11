package io.palisade.broker;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.testing.TestingPostgres;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestPandaRoutes {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TestingPostgres postgres;
    private TestingBroker broker;
    private TestingBroker tight;
    private HttpClient http;

    @BeforeAll
    void start() {
        postgres = new TestingPostgres();
        broker = new TestingBroker(postgres, BrokerConfig.defaults());
        tight = new TestingBroker(postgres, BrokerConfig.defaults()
                .withMaxRows(10)
                .withMaxRequestBytes(4096)
                .withMaxResponseBytes(8192)
                .withStatementTimeout(Duration.ofMillis(500)));
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    }

    @AfterAll
    void stop() {
        if (tight != null) {
            tight.close();
        }
        if (broker != null) {
            broker.close();
        }
        if (postgres != null) {
            postgres.close();
        }
        if (broker != null) {
            assertThat(broker.broker.openConnections(TestingBroker.DATABASE_ID)).isZero();
        }
    }

    private HttpResponse<String> call(TestingBroker target, String method, String path, String body, String token,
            String databaseId) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(
                        URI.create(target.baseUrl() + "/v1/databases/" + databaseId + "/proxy/v1/" + path))
                .timeout(Duration.ofSeconds(30))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body));
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(TestingBroker target, String path, String body) throws Exception {
        return call(target, "POST", path, body, target.token, TestingBroker.DATABASE_ID);
    }

    /** The body without its {@code duration_ms} (which varies), for exact comparisons. */
    private static String timeless(String body) throws Exception {
        com.fasterxml.jackson.databind.node.ObjectNode node = (com.fasterxml.jackson.databind.node.ObjectNode)
                JSON.readTree(body);
        assertThat(node.get("duration_ms").isIntegralNumber()).as(body).isTrue();
        assertThat(node.get("duration_ms").asLong()).isNotNegative();
        node.remove("duration_ms");
        return JSON.writeValueAsString(node);
    }

    @Test
    void query() throws Exception {
        HttpResponse<String> response = post(broker, "query", "{\"database\":\"app\",\"sql\":\"SELECT $1::int AS n, "
                + "$2::text AS t, 10000000000::int8 AS big, true AS ok, '[1]'::json AS j, NULL::text AS nothing, "
                + "'2026-06-13 00:00:00+00'::timestamptz AS at, '2026-06-13'::date AS day\",\"params\":[42, \"hi\"]}");
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type").orElseThrow()).startsWith("application/json");
        assertThat(timeless(response.body())).isEqualTo("{\"columns\":[{\"name\":\"n\",\"type\":\"INT4\","
                + "\"type_oid\":23},{\"name\":\"t\",\"type\":\"TEXT\",\"type_oid\":25},{\"name\":\"big\","
                + "\"type\":\"INT8\",\"type_oid\":20},{\"name\":\"ok\",\"type\":\"BOOL\",\"type_oid\":16},"
                + "{\"name\":\"j\",\"type\":\"JSON\",\"type_oid\":114},{\"name\":\"nothing\",\"type\":\"TEXT\","
                + "\"type_oid\":25},{\"name\":\"at\",\"type\":\"TIMESTAMPTZ\",\"type_oid\":1184},{\"name\":\"day\","
                + "\"type\":\"DATE\",\"type_oid\":1082}],\"rows\":[[42,\"hi\",10000000000,true,\"[1]\",null,"
                + "\"2026-06-13T00:00:00Z\",\"2026-06-13T00:00:00Z\"]],\"count\":1,\"command\":\"SELECT\","
                + "\"truncated\":false}");
        // PandaStack's own database name means the tenant's database
        HttpResponse<String> alias = post(broker, "query", "{\"database\":\"pandastack\",\"sql\":\"SELECT 1 AS one\"}");
        assertThat(JSON.readTree(alias.body()).get("rows").toString()).isEqualTo("[[1]]");
    }

    @Test
    void execRunsScripts() throws Exception {
        HttpResponse<String> script = post(broker, "exec", "{\"database\":\"app\",\"sql\":\"CREATE TABLE notes "
                + "(id serial PRIMARY KEY, body text); INSERT INTO notes (body) VALUES ('a'), ('b')\"}");
        assertThat(script.statusCode()).as(script.body()).isEqualTo(200);
        assertThat(timeless(script.body())).isEqualTo("{\"rows_affected\":2,\"command\":\"INSERT\",\"statements\":2}");
        HttpResponse<String> withParams = post(broker, "exec", "{\"database\":\"app\","
                + "\"sql\":\"UPDATE notes SET body = $1 WHERE id = $2\",\"params\":[\"c\", 1]}");
        assertThat(timeless(withParams.body()))
                .isEqualTo("{\"rows_affected\":1,\"command\":\"UPDATE\",\"statements\":1}");
    }

    @Test
    void transactionCommitsOrRollsBackAsOne() throws Exception {
        post(broker, "exec", "{\"database\":\"app\",\"sql\":\"CREATE TABLE accounts (id int PRIMARY KEY, "
                + "balance int)\"}");
        HttpResponse<String> ok = post(broker, "transaction", "{\"database\":\"app\",\"statements\":["
                + "{\"sql\":\"INSERT INTO accounts VALUES (1, 100), (2, 0)\"},"
                + "{\"sql\":\"UPDATE accounts SET balance = balance - $1 WHERE id = 1\",\"params\":[30]},"
                + "{\"sql\":\"UPDATE accounts SET balance = balance + $1 WHERE id = 2 RETURNING balance\","
                + "\"params\":[30]}],\"isolation_level\":\"serializable\"}");
        assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
        JsonNode results = JSON.readTree(ok.body()).get("results");
        assertThat(results.size()).isEqualTo(3);
        assertThat(results.get(0).toString()).isEqualTo("{\"index\":0,\"rows_affected\":2,\"command\":\"INSERT\"}");
        assertThat(results.get(2).get("index").asInt()).isEqualTo(2);
        assertThat(results.get(2).get("rows").toString()).isEqualTo("[[30]]");
        assertThat(results.get(2).get("count").asInt()).isEqualTo(1);
        assertThat(JSON.readTree(ok.body()).get("duration_ms").isIntegralNumber()).isTrue();

        HttpResponse<String> failed = post(broker, "transaction", "{\"database\":\"app\",\"statements\":["
                + "{\"sql\":\"UPDATE accounts SET balance = 0\"},{\"sql\":\"INSERT INTO accounts VALUES (1, 1)\"}]}");
        assertThat(failed.statusCode()).isEqualTo(400);
        assertThat(failed.headers().firstValue("Content-Type").orElseThrow()).startsWith("application/json");
        JsonNode error = JSON.readTree(failed.body());
        assertThat(error.get("error").asText()).startsWith("duplicate key value violates unique constraint");
        assertThat(error.get("code").asText()).isEqualTo("23505");
        assertThat(error.get("detail").asText()).contains("(id)=(1)");
        assertThat(error.get("constraint").asText()).isEqualTo("accounts_pkey");
        HttpResponse<String> after = post(broker, "query", "{\"database\":\"app\",\"sql\":\"SELECT sum(balance) "
                + "FROM accounts\"}");
        assertThat(JSON.readTree(after.body()).get("rows").toString()).isEqualTo("[[100]]");

        HttpResponse<String> readOnly = post(broker, "transaction",
                "{\"database\":\"app\",\"statements\":[{\"sql\":\"DELETE FROM accounts\"}],\"read_only\":true}");
        assertThat(JSON.readTree(readOnly.body()).get("code").asText()).isEqualTo("25006");
        String many = String.join(",", java.util.Collections.nCopies(101, "{\"sql\":\"SELECT 1\"}"));
        HttpResponse<String> tooMany = post(broker, "transaction", "{\"database\":\"app\",\"statements\":["
                + many + "]}");
        assertThat(tooMany.statusCode()).isEqualTo(400);
        assertThat(tooMany.body()).isEqualTo("{\"error\":\"too many statements\"}");
    }

    @Test
    void sqlErrorsCarryPosition() throws Exception {
        HttpResponse<String> typo = post(broker, "query", "{\"database\":\"app\",\"sql\":\"SELEC 1\"}");
        assertThat(typo.statusCode()).isEqualTo(400);
        assertThat(typo.body()).isEqualTo("{\"error\":\"syntax error at or near \\\"SELEC\\\"\",\"code\":\"42601\","
                + "\"position\":1}");
    }

    @Test
    void healthAndInfo() throws Exception {
        HttpResponse<String> health = call(broker, "GET", "health", null, broker.token, TestingBroker.DATABASE_ID);
        assertThat(health.statusCode()).isEqualTo(200);
        JsonNode checked = JSON.readTree(health.body());
        assertThat(checked.get("status").asText()).isEqualTo("ok");
        assertThat(checked.get("postgres").asText()).isEqualTo("ok");
        assertThat(java.time.Instant.parse(checked.get("ts").asText())).isCloseTo(java.time.Instant.now(),
                org.assertj.core.api.Assertions.within(1, java.time.temporal.ChronoUnit.MINUTES));
        int resolves = broker.resolves.get();
        HttpResponse<String> anonymous = call(broker, "GET", "health", null, null, TestingBroker.DATABASE_ID);
        assertThat(anonymous.statusCode()).isEqualTo(200);
        assertThat(JSON.readTree(anonymous.body()).get("postgres").asText()).isEqualTo("unchecked");
        HttpResponse<String> unknown = call(broker, "GET", "health", null, null, "db-unknown");
        assertThat(unknown.body().replaceAll("\"ts\":\"[^\"]+\"", ""))
                .isEqualTo(anonymous.body().replaceAll("\"ts\":\"[^\"]+\"", ""));
        assertThat(broker.resolves.get()).as("nothing resolved (woken) for an anonymous health check")
                .isEqualTo(resolves);

        HttpResponse<String> info = call(broker, "GET", "info", null, broker.token, TestingBroker.DATABASE_ID);
        assertThat(info.statusCode()).as(info.body()).isEqualTo(200);
        JsonNode body = JSON.readTree(info.body());
        assertThat(body.get("postgres_version").asText()).startsWith("PostgreSQL 16");
        assertThat(body.get("extensions").toString()).contains("\"plpgsql\"");
        assertThat(body.get("broker_version").asText()).startsWith("palisade");
        assertThat(body.get("id").asText()).isEqualTo(TestingBroker.DATABASE_ID);
        assertThat(body.get("database").asText()).isEqualTo("app");
        assertThat(body.get("username").asText()).isEqualTo("app");
        assertThat(body.get("server_version").asText()).startsWith("16");
        assertThat(body.get("limits").get("max_rows").asInt()).isEqualTo(10_000);
        assertThat(body.get("limits").get("max_sql_bytes").asInt()).isEqualTo(1 << 20);
    }

    @Test
    void databasesInsideTheServer() throws Exception {
        HttpResponse<String> list = call(broker, "GET", "databases", null, broker.token, TestingBroker.DATABASE_ID);
        assertThat(list.statusCode()).as(list.body()).isEqualTo(200);
        JsonNode databases = JSON.readTree(list.body()).get("databases");
        assertThat(databases.findValuesAsText("name")).contains("app");
        assertThat(databases.get(0).has("encoding")).isTrue();
        assertThat(databases.get(0).has("collate")).isTrue();
        assertThat(databases.get(0).has("size_bytes")).isTrue();
        // no ServerDatabases wired in: create and drop say so
        HttpResponse<String> create = call(broker, "POST", "databases", "{\"name\":\"extra\"}", broker.token,
                TestingBroker.DATABASE_ID);
        assertThat(create.statusCode()).isEqualTo(501);
        HttpResponse<String> unnamed = call(broker, "POST", "databases", "{}", broker.token, TestingBroker.DATABASE_ID);
        assertThat(unnamed.body()).isEqualTo("{\"error\":\"name required\"}");
        HttpResponse<String> hostile = call(broker, "POST", "databases", "{\"name\":\"x\\\"; DROP DATABASE app; --\"}",
                broker.token, TestingBroker.DATABASE_ID);
        assertThat(hostile.statusCode()).isEqualTo(400);
        assertThat(hostile.body()).isEqualTo("{\"error\":\"invalid character in database name: '\\\"'\"}");
        HttpResponse<String> system = call(broker, "DELETE", "databases/postgres", null, broker.token,
                TestingBroker.DATABASE_ID);
        assertThat(system.statusCode()).isEqualTo(403);
        assertThat(system.body()).isEqualTo("{\"error\":\"cannot drop system database\"}");
        HttpResponse<String> own = call(broker, "DELETE", "databases/app", null, broker.token,
                TestingBroker.DATABASE_ID);
        assertThat(own.statusCode()).isEqualTo(403);
    }

    @Test
    void requestsAreCheckedAsPandaStackChecksThem() throws Exception {
        assertThat(post(broker, "query", "{\"sql\":\"SELECT 1\"}").body())
                .isEqualTo("{\"error\":\"database required\"}");
        assertThat(post(broker, "query", "{\"database\":\"app\"}").body()).isEqualTo("{\"error\":\"sql required\"}");
        assertThat(post(broker, "query", "{\"database\":\"nope\",\"sql\":\"SELECT 1\"}").body())
                .isEqualTo("{\"error\":\"unknown database\"}");
        assertThat(post(broker, "query", "{\"database\":\"app\",\"sql\":\"SELECT 1\"").statusCode()).isEqualTo(400);
        HttpResponse<String> big = post(broker, "query", "{\"database\":\"app\",\"sql\":\"SELECT '"
                + "x".repeat((1 << 20) + 1) + "'\"}");
        assertThat(big.statusCode()).isEqualTo(400);
        assertThat(big.body()).isEqualTo("{\"error\":\"sql too large (max 1048576 bytes)\"}");
        HttpResponse<String> capped = post(broker, "query", "{\"database\":\"app\",\"sql\":\"SELECT "
                + "generate_series(1, 50)\",\"max_rows\":5}");
        assertThat(JSON.readTree(capped.body()).get("count").asInt()).isEqualTo(5);
        HttpResponse<String> quick = post(broker, "query", "{\"database\":\"app\",\"sql\":\"SELECT pg_sleep(5)\","
                + "\"timeout_ms\":300}");
        assertThat(quick.statusCode()).as(quick.body()).isEqualTo(408);
        assertThat(JSON.readTree(quick.body()).get("code").asText()).isEqualTo("57014");
        // the shortened timeout did not stay with the pooled session
        HttpResponse<String> after = post(broker, "query", "{\"database\":\"app\",\"sql\":\"SELECT "
                + "current_setting('statement_timeout') AS t\"}");
        assertThat(JSON.readTree(after.body()).get("rows").toString()).isEqualTo("[[\"30s\"]]");
    }

    @Test
    void noExistenceLeak() throws Exception {
        int resolves = broker.resolves.get();
        HttpResponse<String> wrongToken = call(broker, "POST", "query", "{\"sql\":\"SELECT 1\"}", "nope",
                TestingBroker.DATABASE_ID);
        HttpResponse<String> unknown = call(broker, "POST", "query", "{\"sql\":\"SELECT 1\"}", broker.token,
                "db-unknown");
        HttpResponse<String> none = call(broker, "GET", "info", null, null, TestingBroker.DATABASE_ID);
        assertThat(wrongToken.statusCode()).isEqualTo(401);
        assertThat(unknown.statusCode()).isEqualTo(401);
        assertThat(none.statusCode()).isEqualTo(401);
        assertThat(wrongToken.body()).isEqualTo(unknown.body()).isEqualTo(none.body())
                .isEqualTo("{\"error\":\"unauthorized\"}");
        assertThat(wrongToken.headers().firstValue("WWW-Authenticate")).contains("Bearer");
        assertThat(broker.resolves.get()).as("nothing resolved (woken) for a refused caller").isEqualTo(resolves);
    }

    @Test
    void idleConnectionsAreClosedAndEvicted() throws Exception {
        try (TestingBroker reaping = new TestingBroker(postgres, BrokerConfig.defaults()
                .withIdleConnectionTimeout(Duration.ofSeconds(1)))) {
            String select = "{\"database\":\"app\",\"sql\":\"SELECT 1\"}";
            assertThat(post(reaping, "query", select).statusCode()).isEqualTo(200);
            assertThat(reaping.broker.openConnections(TestingBroker.DATABASE_ID)).isEqualTo(1);
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10))
                    .until(() -> reaping.broker.openConnections(TestingBroker.DATABASE_ID) == 0);
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> reaping.registry
                    .find("palisade.broker.pool.connections").gauges().isEmpty());
            assertThat(post(reaping, "query", select).statusCode()).isEqualTo(200);
            reaping.broker.evict(TestingBroker.DATABASE_ID);
            assertThat(reaping.broker.openConnections(TestingBroker.DATABASE_ID)).isZero();
        }
    }

    @Test
    void limits() throws Exception {
        HttpResponse<String> truncated = post(tight, "query", "{\"database\":\"app\",\"sql\":\"SELECT "
                + "generate_series(1, 50) AS n\"}");
        assertThat(truncated.statusCode()).isEqualTo(200);
        JsonNode body = JSON.readTree(truncated.body());
        assertThat(body.get("rows").size()).isEqualTo(10);
        assertThat(body.get("truncated").asBoolean()).isTrue();
        assertThat(body.get("count").asInt()).isEqualTo(10);
        JsonNode exact = JSON.readTree(post(tight, "query", "{\"database\":\"app\",\"sql\":\"SELECT "
                + "generate_series(1, 10)\"}").body());
        assertThat(exact.get("truncated").asBoolean()).isFalse();

        HttpResponse<String> tooLarge = post(tight, "query", "{\"database\":\"app\",\"sql\":\"SELECT '"
                + "x".repeat(5000) + "'\"}");
        assertThat(tooLarge.statusCode()).isEqualTo(413);
        assertThat(JSON.readTree(tooLarge.body()).get("error").asText()).contains("larger than 4096 bytes");

        HttpResponse<String> tooBig = post(tight, "query", "{\"database\":\"app\",\"sql\":\"SELECT "
                + "repeat('y', 10000)\"}");
        assertThat(tooBig.statusCode()).isEqualTo(507);

        HttpResponse<String> slow = post(tight, "query", "{\"database\":\"app\",\"sql\":\"SELECT pg_sleep(5)\","
                + "\"timeout_ms\":500}");
        assertThat(slow.statusCode()).isEqualTo(408);
        assertThat(JSON.readTree(slow.body()).get("code").asText()).isEqualTo("57014");
        // the pool survived all of that
        assertThat(post(tight, "query", "{\"database\":\"app\",\"sql\":\"SELECT 1\"}").statusCode()).isEqualTo(200);
    }
}
