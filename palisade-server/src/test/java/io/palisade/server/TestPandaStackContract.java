package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * PandaStack's documented database API replayed against a live palisade (process rung): the create response, the
 * broker's routes under {@code broker_url} with the examples of PandaStack's "Databases" page (request bodies, field
 * names and JSON types, statuses, error texts, defaults of 10,000 rows, 30 s / 60 s and 1 MiB of SQL, at most 100
 * statements), the databases inside the tenant's server, and the credentials a PandaStack client may send (the
 * broker token or its API key).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestPandaStackContract {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private TestingPalisade palisade;
    private JsonNode db;
    private String brokerUrl;
    private String token;

    @BeforeAll
    void start() {
        palisade = TestingPalisade.requiring("process", Map.of());
        // PandaStack's example: POST /v1/databases {"label":"my-app-db"}
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"my-app-db\",\"isolation\":\"process\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        db = created.json();
        brokerUrl = db.get("broker_url").asText();
        token = db.get("broker_token").asText();
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.server().store().list("acct-admin").forEach(r -> palisade.delete("/v1/databases/" + r.id()));
            palisade.close();
        }
    }

    private HttpResponse<String> call(String method, String path, String body, String bearer) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(brokerUrl + path))
                .timeout(Duration.ofMinutes(2))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) {
            request.header("Content-Type", "application/json");
        }
        if (bearer != null) {
            request.header("Authorization", "Bearer " + bearer);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String path, String body) throws Exception {
        return call("POST", path, body, token);
    }

    private static JsonNode json(HttpResponse<String> response) throws Exception {
        assertThat(response.headers().firstValue("Content-Type").orElse("")).as(response.body())
                .startsWith("application/json");
        return JSON.readTree(response.body());
    }

    @Test
    void createResponseCarriesPandaStacksFields() {
        for (String field : List.of("id", "status", "template", "label", "host", "port", "database", "username",
                "password", "connection_url", "broker_token", "broker_url")) {
            assertThat(db.has(field)).as("create response has %s: %s", field, db).isTrue();
        }
        assertThat(db.get("status").asText()).isEqualTo("running");
        assertThat(db.get("template").asText()).isEqualTo("postgres-16");
        assertThat(db.get("label").asText()).isEqualTo("my-app-db");
        assertThat(db.get("port").isInt()).isTrue();
        assertThat(brokerUrl).isEqualTo(palisade.apiUrl() + "/v1/databases/" + db.get("id").asText() + "/proxy");
    }

    @Test
    void queryExample() throws Exception {
        // curl -X POST "$BROKER_URL/v1/query" -d '{"database":"pandastack","sql":"SELECT now()"}'
        HttpResponse<String> response = post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"SELECT now()\"}");
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        JsonNode body = json(response);
        assertThat(body.get("columns").size()).isEqualTo(1);
        assertThat(body.get("columns").get(0).get("name").asText()).isEqualTo("now");
        assertThat(body.get("columns").get(0).get("type").asText()).isEqualTo("TIMESTAMPTZ");
        String now = body.get("rows").get(0).get(0).asText();
        assertThat(Instant.parse(now)).isBetween(Instant.now().minusSeconds(120), Instant.now().plusSeconds(120));
        assertThat(body.get("count").isInt()).isTrue();
        assertThat(body.get("count").asInt()).isEqualTo(1);
        assertThat(body.get("duration_ms").isIntegralNumber()).isTrue();
        // palisade's additions only add
        assertThat(body.get("columns").get(0).get("type_oid").asInt()).isEqualTo(1184);
        assertThat(body.get("truncated").asBoolean()).isFalse();
        // params, and the database's own name works as well as PandaStack's
        HttpResponse<String> params = post("/v1/query", "{\"database\":\"" + db.get("database").asText()
                + "\",\"sql\":\"SELECT $1::int + 1 AS answer, $2::text AS who\",\"params\":[41,\"ann\"]}");
        JsonNode answer = json(params);
        assertThat(answer.get("columns").toString()).isEqualTo("[{\"name\":\"answer\",\"type\":\"INT4\","
                + "\"type_oid\":23},{\"name\":\"who\",\"type\":\"TEXT\",\"type_oid\":25}]");
        assertThat(answer.get("rows").toString()).isEqualTo("[[42,\"ann\"]]");
    }

    @Test
    void valuesAsPandaStacksBrokerWritesThem() throws Exception {
        // PandaStack's broker scans every column with lib/pq into Go values and writes them with encoding/json
        String sql = "SELECT (SELECT count(*) FROM generate_series(1, 3)) AS n, 9223372036854775807::int8 AS big, "
                + "1.50::numeric AS price, '{\\\"a\\\": [1, 2]}'::json AS doc, '{\\\"b\\\": 1}'::jsonb AS docb, "
                + "ARRAY[1, 2, 3]::int[] AS list, '2026-06-13 10:00:00.123456+00'::timestamptz AS at, "
                + "'2026-06-13'::date AS day, '\\\\x68690a'::bytea AS raw, true AS ok, NULL::text AS nothing, "
                + "'NaN'::float8 AS nan, 1.5::float4 AS half, 1e21::float8 AS huge";
        String expected = "[3,9223372036854775807,\"1.50\",\"{\\\"a\\\": [1, 2]}\",\"{\\\"b\\\": 1}\",\"{1,2,3}\","
                + "\"AT\",\"2026-06-13T00:00:00Z\",\"hi\\n\",true,null,\"NaN\",1.5,1e+21]";
        HttpResponse<String> response = post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"" + sql + "\"}");
        JsonNode query = json(response);
        assertThat(query.get("columns").findValuesAsText("type")).containsExactly("INT8", "INT8", "NUMERIC", "JSON",
                "JSONB", "_INT4", "TIMESTAMPTZ", "DATE", "BYTEA", "BOOL", "TEXT", "FLOAT8", "FLOAT4", "FLOAT8");
        JsonNode row = query.get("rows").get(0);
        // a timestamptz is RFC 3339 in the session's time zone, to the microsecond
        String at = row.get(6).asText();
        assertThat(at).matches("2026-06-1\\dT\\d\\d:\\d\\d:00\\.123456(Z|[+-]\\d\\d:\\d\\d)");
        assertThat(Instant.parse(at)).isEqualTo(Instant.parse("2026-06-13T10:00:00.123456Z"));
        // compared as written: the numbers exactly as Go writes them (1e+21, not 1.0E21)
        assertThat(response.body().replace(at, "AT")).contains("\"rows\":[" + expected + "]");
        // numbers are JSON numbers, not strings
        assertThat(row.get(0).isIntegralNumber()).isTrue();
        assertThat(row.get(1).isIntegralNumber()).isTrue();
        assertThat(row.get(12).isNumber()).isTrue();

        // the same through the extended protocol (params) and in a transaction
        HttpResponse<String> withParams = post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"" + sql
                + ", $1::int8 AS p\",\"params\":[\"42\"]}");
        JsonNode extended = json(withParams).get("rows").get(0);
        assertThat(extended.get(14).isIntegralNumber()).as(withParams.body()).isTrue();
        assertThat(extended.get(14).asLong()).isEqualTo(42);
        HttpResponse<String> transaction = post("/v1/transaction", "{\"database\":\"pandastack\",\"statements\":["
                + "{\"sql\":\"" + sql + "\"},{\"sql\":\"SELECT 1 AS one WHERE false\"}]}");
        JsonNode results = json(transaction).get("results");
        assertThat(transaction.body().replace(at, "AT")).contains("\"rows\":[" + expected + "]");
        // an empty result: PandaStack omits rows and count (omitempty); palisade keeps them as additions
        assertThat(results.get(1).get("rows").toString()).isEqualTo("[]");
        assertThat(results.get(1).get("count").asInt()).isZero();
        // an empty query result has rows [] in both
        JsonNode none = json(post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"SELECT 1 WHERE false\"}"));
        assertThat(none.get("rows").toString()).isEqualTo("[]");
        assertThat(none.get("count").asInt()).isZero();
    }

    @Test
    void databaseAndSqlAreRequired() throws Exception {
        HttpResponse<String> noDatabase = post("/v1/query", "{\"sql\":\"SELECT now()\"}");
        assertThat(noDatabase.statusCode()).isEqualTo(400);
        assertThat(noDatabase.body()).isEqualTo("{\"error\":\"database required\"}");
        HttpResponse<String> noSql = post("/v1/query", "{\"database\":\"pandastack\"}");
        assertThat(noSql.statusCode()).isEqualTo(400);
        assertThat(noSql.body()).isEqualTo("{\"error\":\"sql required\"}");
        HttpResponse<String> invalid = post("/v1/exec", "{\"database\":");
        assertThat(invalid.statusCode()).isEqualTo(400);
        assertThat(json(invalid).get("error").asText()).startsWith("invalid JSON: ");
        HttpResponse<String> sqlError = post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"SELECT nope\"}");
        assertThat(sqlError.statusCode()).isEqualTo(400);
        JsonNode error = json(sqlError);
        assertThat(error.get("error").asText()).isEqualTo("column \"nope\" does not exist");
        assertThat(error.get("code").asText()).isEqualTo("42703");
        assertThat(error.get("position").asInt()).isEqualTo(8);
    }

    @Test
    void execAndTransaction() throws Exception {
        HttpResponse<String> create = post("/v1/exec", "{\"database\":\"pandastack\",\"sql\":\"CREATE TABLE t "
                + "(id serial, name text)\"}");
        assertThat(create.statusCode()).as(create.body()).isEqualTo(200);
        HttpResponse<String> insert = post("/v1/exec", "{\"database\":\"pandastack\",\"sql\":\"INSERT INTO t (name) "
                + "VALUES ($1), ($2)\",\"params\":[\"hello\",\"world\"],\"timeout_ms\":5000}");
        JsonNode inserted = json(insert);
        assertThat(inserted.get("rows_affected").isIntegralNumber()).isTrue();
        assertThat(inserted.get("rows_affected").asLong()).isEqualTo(2);
        assertThat(inserted.get("duration_ms").isIntegralNumber()).isTrue();

        HttpResponse<String> tx = post("/v1/transaction", "{\"database\":\"pandastack\",\"statements\":["
                + "{\"sql\":\"UPDATE t SET name = $1 WHERE id = 1\",\"params\":[\"hi\"]},"
                + "{\"sql\":\"SELECT count(*) AS n FROM t\"}],\"timeout_ms\":30000}");
        assertThat(tx.statusCode()).as(tx.body()).isEqualTo(200);
        JsonNode results = json(tx).get("results");
        assertThat(results.get(0).get("index").asInt()).isZero();
        assertThat(results.get(1).get("index").asInt()).isEqualTo(1);
        assertThat(results.get(1).get("columns").get(0).get("type").asText()).isEqualTo("INT8");
        assertThat(results.get(1).get("count").asInt()).isEqualTo(1);
        assertThat(json(tx).get("duration_ms").isIntegralNumber()).isTrue();

        HttpResponse<String> none = post("/v1/transaction", "{\"database\":\"pandastack\",\"statements\":[]}");
        assertThat(none.body()).isEqualTo("{\"error\":\"no statements\"}");
        String statements = String.join(",", Collections.nCopies(101, "{\"sql\":\"SELECT 1\"}"));
        HttpResponse<String> tooMany = post("/v1/transaction", "{\"database\":\"pandastack\",\"statements\":["
                + statements + "]}");
        assertThat(tooMany.statusCode()).isEqualTo(400);
        assertThat(tooMany.body()).isEqualTo("{\"error\":\"too many statements\"}");
        String hundred = String.join(",", Collections.nCopies(100, "{\"sql\":\"SELECT 1\"}"));
        assertThat(post("/v1/transaction", "{\"database\":\"pandastack\",\"statements\":[" + hundred + "]}")
                .statusCode()).isEqualTo(200);
    }

    @Test
    void defaults() throws Exception {
        JsonNode rows = json(post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"SELECT generate_series(1, "
                + "10001) AS n\"}"));
        assertThat(rows.get("count").asInt()).isEqualTo(10_000);
        assertThat(rows.get("truncated").asBoolean()).isTrue();
        JsonNode capped = json(post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"SELECT generate_series(1, "
                + "100)\",\"max_rows\":7}"));
        assertThat(capped.get("count").asInt()).isEqualTo(7);
        HttpResponse<String> big = post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"SELECT '"
                + "x".repeat((1 << 20) + 1) + "'\"}");
        assertThat(big.statusCode()).isEqualTo(400);
        assertThat(big.body()).isEqualTo("{\"error\":\"sql too large (max 1048576 bytes)\"}");
        HttpResponse<String> slow = post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"SELECT pg_sleep(10)\","
                + "\"timeout_ms\":500}");
        assertThat(slow.statusCode()).isEqualTo(408);
        assertThat(json(slow).get("code").asText()).isEqualTo("57014");
        JsonNode timeouts = json(post("/v1/transaction", "{\"database\":\"pandastack\",\"statements\":["
                + "{\"sql\":\"SELECT current_setting('statement_timeout') AS t\"}]}"));
        assertThat(timeouts.get("results").get(0).get("rows").toString()).isEqualTo("[[\"1min\"]]");
        JsonNode query = json(post("/v1/query", "{\"database\":\"pandastack\",\"sql\":\"SELECT "
                + "current_setting('statement_timeout') AS t\"}"));
        assertThat(query.get("rows").toString()).isEqualTo("[[\"30s\"]]");
    }

    @Test
    void healthAndInfo() throws Exception {
        HttpResponse<String> anonymous = call("GET", "/v1/health", null, null);
        assertThat(anonymous.statusCode()).isEqualTo(200);
        JsonNode open = json(anonymous);
        assertThat(open.get("status").asText()).isEqualTo("ok");
        assertThat(open.has("postgres")).isTrue();
        assertThat(Instant.parse(open.get("ts").asText())).isBefore(Instant.now().plusSeconds(60));
        JsonNode checked = json(call("GET", "/v1/health", null, token));
        assertThat(checked.get("postgres").asText()).isEqualTo("ok");

        HttpResponse<String> info = call("GET", "/v1/info", null, token);
        assertThat(info.statusCode()).as(info.body()).isEqualTo(200);
        JsonNode body = json(info);
        assertThat(body.get("postgres_version").asText()).startsWith("PostgreSQL 16");
        assertThat(body.get("extensions").isArray()).isTrue();
        assertThat(body.get("broker_version").isTextual()).isTrue();
        assertThat(call("GET", "/v1/info", null, null).statusCode()).isEqualTo(401);
    }

    @Test
    void databasesInsideTheServer() throws Exception {
        HttpResponse<String> create = post("/v1/databases", "{\"name\":\"analytics\"}");
        assertThat(create.statusCode()).as(create.body()).isEqualTo(201);
        assertThat(create.body()).isEqualTo("{\"name\":\"analytics\",\"owner\":\"" + db.get("username").asText()
                + "\",\"created\":true}");
        JsonNode list = json(call("GET", "/v1/databases", null, token));
        assertThat(list.get("databases").findValuesAsText("name")).contains("analytics", db.get("database").asText());
        JsonNode first = list.get("databases").get(0);
        assertThat(first.fieldNames()).toIterable().containsExactly("name", "encoding", "collate", "size_bytes");

        HttpResponse<String> use = post("/v1/exec", "{\"database\":\"analytics\",\"sql\":\"CREATE TABLE facts (n int); "
                + "INSERT INTO facts VALUES (1)\"}");
        assertThat(use.statusCode()).as(use.body()).isEqualTo(200);
        JsonNode where = json(post("/v1/query", "{\"database\":\"analytics\",\"sql\":\"SELECT current_database(), "
                + "current_user\"}"));
        assertThat(where.get("rows").toString()).isEqualTo("[[\"analytics\",\"" + db.get("username").asText() + "\"]]");

        HttpResponse<String> again = post("/v1/databases", "{\"name\":\"analytics\"}");
        assertThat(again.statusCode()).isEqualTo(400);
        assertThat(json(again).get("code").asText()).isEqualTo("42P04");
        assertThat(post("/v1/databases", "{\"name\":\"a;b\"}").body())
                .isEqualTo("{\"error\":\"invalid character in database name: ';'\"}");
        assertThat(post("/v1/databases", "{\"name\":\"x\",\"owner\":\"postgres\"}").statusCode()).isEqualTo(400);
        assertThat(call("DELETE", "/v1/databases/postgres", null, token).body())
                .isEqualTo("{\"error\":\"cannot drop system database\"}");
        assertThat(call("DELETE", "/v1/databases/" + db.get("database").asText(), null, token).statusCode())
                .isEqualTo(403);

        // a move copies one database: refused while another one is there (nothing is left behind)
        TestingPalisade.Response move = palisade.post("/v1/databases/" + db.get("id").asText() + "/isolation",
                "{\"isolation\":\"schema\"}");
        assertThat(move.status()).as(move.body()).isEqualTo(409);
        assertThat(move.json().get("detail").asText()).contains("more than one database", "analytics");

        HttpResponse<String> drop = call("DELETE", "/v1/databases/analytics", null, token);
        assertThat(drop.statusCode()).as(drop.body()).isEqualTo(204);
        assertThat(post("/v1/query", "{\"database\":\"analytics\",\"sql\":\"SELECT 1\"}").body())
                .isEqualTo("{\"error\":\"unknown database\"}");
        assertThat(call("DELETE", "/v1/databases/analytics", null, token).statusCode()).isEqualTo(204);
    }

    @Test
    void sharedRungsRefuseDatabasesInside() throws Exception {
        palisade.requireUsable("database");
        TestingPalisade.Response shared = palisade.post("/v1/databases",
                "{\"label\":\"shared\",\"isolation\":\"database\"}");
        assertThat(shared.status()).as(shared.body()).isEqualTo(201);
        String url = shared.json().get("broker_url").asText();
        HttpResponse<String> create = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/databases"))
                .header("Authorization", "Bearer " + shared.json().get("broker_token").asText())
                .POST(HttpRequest.BodyPublishers.ofString("{\"name\":\"extra\"}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(create.statusCode()).isEqualTo(403);
        assertThat(json(create).get("error").asText()).contains("shared server", "process or vm rung");
        HttpResponse<String> list = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/databases"))
                .header("Authorization", "Bearer " + shared.json().get("broker_token").asText()).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(json(list).get("databases").findValuesAsText("name"))
                .containsExactly(shared.json().get("database").asText());
        palisade.delete("/v1/databases/" + shared.json().get("id").asText());
    }

    @Test
    void theTokenOrTheAccountsKeyAndNothingElse() throws Exception {
        String select = "{\"database\":\"pandastack\",\"sql\":\"SELECT 1 AS one\"}";
        assertThat(call("POST", "/v1/query", select, palisade.adminKey()).statusCode()).isEqualTo(200);
        String stranger = palisade.newAccount("panda-stranger");
        HttpResponse<String> foreignKey = call("POST", "/v1/query", select, stranger);
        HttpResponse<String> wrongToken = call("POST", "/v1/query", select, "pds_pg_invented");
        HttpResponse<String> none = call("POST", "/v1/query", select, null);
        String id = db.get("id").asText();
        String unknownId = id.substring(0, id.length() - 2) + (id.endsWith("q") ? "xz" : "qx");
        HttpResponse<String> unknown = http.send(HttpRequest.newBuilder(URI.create(brokerUrl.replace(id, unknownId)
                        + "/v1/query")).header("Authorization", "Bearer " + token)
                .POST(HttpRequest.BodyPublishers.ofString(select)).build(), HttpResponse.BodyHandlers.ofString());
        for (HttpResponse<String> refused : List.of(foreignKey, wrongToken, none, unknown)) {
            assertThat(refused.statusCode()).isEqualTo(401);
            assertThat(refused.body()).isEqualTo("{\"error\":\"unauthorized\"}");
        }
    }
}
