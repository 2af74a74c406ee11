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
                        URI.create(target.baseUrl() + "/broker/" + databaseId + "/v1/" + path))
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

    @Test
    void query() throws Exception {
        HttpResponse<String> response = post(broker, "query", "{\"sql\":\"SELECT $1::int AS n, $2::text AS t, "
                + "10000000000::int8 AS big, true AS ok, '[1]'::json AS j, NULL::text AS nothing\","
                + "\"params\":[42, \"hi\"]}");
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type").orElseThrow()).startsWith("application/json");
        assertThat(response.body()).isEqualTo("{\"columns\":[{\"name\":\"n\",\"type\":\"int4\",\"type_oid\":23},"
                + "{\"name\":\"t\",\"type\":\"text\",\"type_oid\":25},{\"name\":\"big\",\"type\":\"int8\","
                + "\"type_oid\":20},{\"name\":\"ok\",\"type\":\"bool\",\"type_oid\":16},{\"name\":\"j\",\"type\":"
                + "\"json\",\"type_oid\":114},{\"name\":\"nothing\",\"type\":\"text\",\"type_oid\":25}],"
                + "\"rows\":[[42,\"hi\",\"10000000000\",true,[1],null]],\"row_count\":1,\"command\":\"SELECT\","
                + "\"truncated\":false}");
    }

    @Test
    void execRunsScripts() throws Exception {
        HttpResponse<String> script = post(broker, "exec", "{\"sql\":\"CREATE TABLE notes (id serial PRIMARY KEY, "
                + "body text); INSERT INTO notes (body) VALUES ('a'), ('b')\"}");
        assertThat(script.statusCode()).as(script.body()).isEqualTo(200);
        assertThat(script.body()).isEqualTo("{\"command\":\"INSERT\",\"row_count\":2,\"statements\":2}");
        HttpResponse<String> withParams = post(broker, "exec",
                "{\"sql\":\"UPDATE notes SET body = $1 WHERE id = $2\",\"params\":[\"c\", 1]}");
        assertThat(withParams.body()).isEqualTo("{\"command\":\"UPDATE\",\"row_count\":1,\"statements\":1}");
    }

    @Test
    void transactionCommitsOrRollsBackAsOne() throws Exception {
        post(broker, "exec", "{\"sql\":\"CREATE TABLE accounts (id int PRIMARY KEY, balance int)\"}");
        HttpResponse<String> ok = post(broker, "transaction", "{\"statements\":["
                + "{\"sql\":\"INSERT INTO accounts VALUES (1, 100), (2, 0)\"},"
                + "{\"sql\":\"UPDATE accounts SET balance = balance - $1 WHERE id = 1\",\"params\":[30]},"
                + "{\"sql\":\"UPDATE accounts SET balance = balance + $1 WHERE id = 2 RETURNING balance\","
                + "\"params\":[30]}],\"isolation_level\":\"serializable\"}");
        assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
        JsonNode results = JSON.readTree(ok.body()).get("results");
        assertThat(results.size()).isEqualTo(3);
        assertThat(results.get(2).get("rows").toString()).isEqualTo("[[30]]");

        HttpResponse<String> failed = post(broker, "transaction", "{\"statements\":["
                + "{\"sql\":\"UPDATE accounts SET balance = 0\"},{\"sql\":\"INSERT INTO accounts VALUES (1, 1)\"}]}");
        assertThat(failed.statusCode()).isEqualTo(400);
        assertThat(failed.headers().firstValue("Content-Type").orElseThrow()).startsWith("application/problem+json");
        JsonNode problem = JSON.readTree(failed.body());
        assertThat(problem.get("code").asText()).isEqualTo("sql-error");
        assertThat(problem.get("sqlstate").asText()).isEqualTo("23505");
        assertThat(problem.get("status").asInt()).isEqualTo(400);
        assertThat(problem.get("type").asText()).isEqualTo("https://palisade.dev/problems/sql-error");
        HttpResponse<String> after = post(broker, "query", "{\"sql\":\"SELECT sum(balance) FROM accounts\"}");
        assertThat(JSON.readTree(after.body()).get("rows").toString()).isEqualTo("[[\"100\"]]");

        HttpResponse<String> readOnly = post(broker, "transaction",
                "{\"statements\":[{\"sql\":\"DELETE FROM accounts\"}],\"read_only\":true}");
        assertThat(JSON.readTree(readOnly.body()).get("sqlstate").asText()).isEqualTo("25006");
    }

    @Test
    void healthAndInfo() throws Exception {
        HttpResponse<String> health = call(broker, "GET", "health", null, broker.token, TestingBroker.DATABASE_ID);
        assertThat(health.statusCode()).isEqualTo(200);
        assertThat(JSON.readTree(health.body()).get("status").asText()).isEqualTo("ok");
        HttpResponse<String> info = call(broker, "GET", "info", null, broker.token, TestingBroker.DATABASE_ID);
        assertThat(info.statusCode()).as(info.body()).isEqualTo(200);
        JsonNode body = JSON.readTree(info.body());
        assertThat(body.get("id").asText()).isEqualTo(TestingBroker.DATABASE_ID);
        assertThat(body.get("database").asText()).isEqualTo("app");
        assertThat(body.get("username").asText()).isEqualTo("app");
        assertThat(body.get("server_version").asText()).startsWith("16");
        assertThat(body.get("limits").get("max_rows").asInt()).isEqualTo(10_000);
    }

    @Test
    void noExistenceLeak() throws Exception {
        HttpResponse<String> wrongToken = call(broker, "POST", "query", "{\"sql\":\"SELECT 1\"}", "nope",
                TestingBroker.DATABASE_ID);
        HttpResponse<String> unknown = call(broker, "POST", "query", "{\"sql\":\"SELECT 1\"}", broker.token,
                "db-unknown");
        HttpResponse<String> none = call(broker, "GET", "health", null, null, TestingBroker.DATABASE_ID);
        assertThat(wrongToken.statusCode()).isEqualTo(401);
        assertThat(unknown.statusCode()).isEqualTo(401);
        assertThat(none.statusCode()).isEqualTo(401);
        assertThat(wrongToken.body()).isEqualTo(unknown.body()).isEqualTo(none.body());
        assertThat(JSON.readTree(wrongToken.body()).get("code").asText()).isEqualTo("unauthenticated");
    }

    @Test
    void idleConnectionsAreClosedAndEvicted() throws Exception {
        try (TestingBroker reaping = new TestingBroker(postgres, BrokerConfig.defaults()
                .withIdleConnectionTimeout(Duration.ofSeconds(1)))) {
            assertThat(post(reaping, "query", "{\"sql\":\"SELECT 1\"}").statusCode()).isEqualTo(200);
            assertThat(reaping.broker.openConnections(TestingBroker.DATABASE_ID)).isEqualTo(1);
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10))
                    .until(() -> reaping.broker.openConnections(TestingBroker.DATABASE_ID) == 0);
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> reaping.registry
                    .find("palisade.broker.pool.connections").gauges().isEmpty());
            assertThat(post(reaping, "query", "{\"sql\":\"SELECT 1\"}").statusCode()).isEqualTo(200);
            reaping.broker.evict(TestingBroker.DATABASE_ID);
            assertThat(reaping.broker.openConnections(TestingBroker.DATABASE_ID)).isZero();
        }
    }

    @Test
    void limits() throws Exception {
        HttpResponse<String> truncated = post(tight, "query", "{\"sql\":\"SELECT generate_series(1, 50) AS n\"}");
        assertThat(truncated.statusCode()).isEqualTo(200);
        JsonNode body = JSON.readTree(truncated.body());
        assertThat(body.get("rows").size()).isEqualTo(10);
        assertThat(body.get("truncated").asBoolean()).isTrue();
        assertThat(body.get("row_count").asInt()).isEqualTo(10);
        JsonNode exact = JSON.readTree(post(tight, "query", "{\"sql\":\"SELECT generate_series(1, 10)\"}").body());
        assertThat(exact.get("truncated").asBoolean()).isFalse();

        HttpResponse<String> tooLarge = post(tight, "query", "{\"sql\":\"SELECT '" + "x".repeat(5000) + "'\"}");
        assertThat(tooLarge.statusCode()).isEqualTo(413);
        assertThat(JSON.readTree(tooLarge.body()).get("code").asText()).isEqualTo("payload-too-large");

        HttpResponse<String> tooBig = post(tight, "query", "{\"sql\":\"SELECT repeat('y', 10000)\"}");
        assertThat(tooBig.statusCode()).isEqualTo(507);
        assertThat(JSON.readTree(tooBig.body()).get("code").asText()).isEqualTo("response-too-large");

        HttpResponse<String> slow = post(tight, "query", "{\"sql\":\"SELECT pg_sleep(5)\"}");
        assertThat(slow.statusCode()).isEqualTo(504);
        assertThat(JSON.readTree(slow.body()).get("sqlstate").asText()).isEqualTo("57014");

        HttpResponse<String> bad = post(tight, "query", "{\"params\":[]}");
        assertThat(bad.statusCode()).isEqualTo(400);
        assertThat(JSON.readTree(bad.body()).get("code").asText()).isEqualTo("invalid-request");
        // the pool survived all of that
        assertThat(post(tight, "query", "{\"sql\":\"SELECT 1\"}").statusCode()).isEqualTo(200);
    }
}
