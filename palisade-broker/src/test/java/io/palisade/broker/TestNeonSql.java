package io.palisade.broker;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.testing.TestingPostgres;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestNeonSql {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TestingPostgres postgres;
    private TestingBroker broker;
    private TestingBroker tight;
    private HttpClient http;

    @BeforeAll
    void start() throws Exception {
        postgres = new TestingPostgres();
        broker = new TestingBroker(postgres, BrokerConfig.defaults());
        tight = new TestingBroker(postgres, BrokerConfig.defaults()
                .withMaxRows(100)
                .withMaxRequestBytes(64 * 1024)
                .withMaxResponseBytes(64 * 1024)
                .withStatementTimeout(Duration.ofSeconds(1))
                .withPoolSizePerDatabase(2));
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        try (Connection c = postgres.connect(); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2))");
        }
    }

    @AfterAll
    void stop() throws Exception {
        if (tight != null) {
            tight.close();
        }
        if (broker != null) {
            broker.close();
        }
        if (postgres != null && broker != null) {
            // nothing leaked: closing the brokers ended every backend connection they held
            waitFor("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'", "0");
        }
        if (postgres != null) {
            postgres.close();
        }
    }

    private HttpResponse<String> post(TestingBroker target, String body, Map<String, String> headers)
            throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(target.baseUrl() + "/sql"))
                .timeout(Duration.ofSeconds(30))
                .POST(HttpRequest.BodyPublishers.ofString(body));
        headers.forEach(request::header);
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> sql(TestingBroker target, String body, String... extraHeaders) throws Exception {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("Neon-Connection-String", target.connectionString());
        headers.put("Neon-Raw-Text-Output", "true");
        headers.put("Neon-Array-Mode", "true");
        for (int i = 0; i < extraHeaders.length; i += 2) {
            headers.put(extraHeaders[i], extraHeaders[i + 1]);
        }
        return post(target, body, headers);
    }

    @Test
    void singleQueryWithParamsGivesExactFields() throws Exception {
        HttpResponse<String> response = sql(broker,
                "{\"query\":\"SELECT $1::int AS n, $2::text AS t, NULL::bool AS b, 9007199254740993::int8 AS big\","
                        + "\"params\":[\"42\", \"héllo \\\"x\\\"\"]}");
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Neon-Request-Id")).isPresent();
        assertThat(response.headers().firstValue("Access-Control-Allow-Origin")).hasValue("*");
        assertThat(response.headers().firstValue("Content-Type").orElseThrow()).startsWith("application/json");
        JsonNode body = JSON.readTree(response.body());
        assertThat(body.get("fields").get(0).toString()).isEqualTo("{\"name\":\"n\",\"dataTypeID\":23,\"tableID\":0,"
                + "\"columnID\":0,\"dataTypeSize\":4,\"dataTypeModifier\":-1,\"format\":\"text\"}");
        assertThat(body.get("fields").get(3).get("dataTypeID").asInt()).isEqualTo(20);
        assertThat(body.get("rows").toString()).isEqualTo("[[\"42\",\"héllo \\\"x\\\"\",null,\"9007199254740993\"]]");
        assertThat(body.get("command").asText()).isEqualTo("SELECT");
        assertThat(body.get("rowCount").asInt()).isEqualTo(1);
        assertThat(body.get("rowAsArray").asBoolean()).isTrue();
    }

    @Test
    void tableColumnsCarryTableOidAndTypmod() throws Exception {
        HttpResponse<String> response = sql(broker, "{\"query\":\"SELECT id, price FROM items\"}");
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        JsonNode price = JSON.readTree(response.body()).get("fields").get(1);
        assertThat(price.get("dataTypeID").asInt()).isEqualTo(1700);
        assertThat(price.get("tableID").asInt()).isGreaterThan(0);
        assertThat(price.get("columnID").asInt()).isEqualTo(3);
        assertThat(price.get("dataTypeModifier").asInt()).isEqualTo(((10 << 16) | 2) + 4);
        assertThat(price.get("dataTypeSize").asInt()).isEqualTo(-1);
    }

    @Test
    void commandTagsAndRowCounts() throws Exception {
        JsonNode created = JSON.readTree(sql(broker, "{\"query\":\"CREATE TABLE tags (x int)\"}").body());
        assertThat(created.get("command").asText()).isEqualTo("CREATE");
        assertThat(created.get("rowCount").isNull()).isTrue();
        assertThat(created.get("fields").size()).isZero();
        JsonNode inserted = JSON.readTree(sql(broker,
                "{\"query\":\"INSERT INTO tags SELECT generate_series(1, $1::int)\",\"params\":[3]}").body());
        assertThat(inserted.get("command").asText()).isEqualTo("INSERT");
        assertThat(inserted.get("rowCount").asInt()).isEqualTo(3);
        JsonNode updated = JSON.readTree(sql(broker, "{\"query\":\"UPDATE tags SET x = x + 1\"}").body());
        assertThat(updated.get("command").asText()).isEqualTo("UPDATE");
        assertThat(updated.get("rowCount").asInt()).isEqualTo(3);
        JsonNode dropped = JSON.readTree(sql(broker, "{\"query\":\"DROP TABLE tags\"}").body());
        assertThat(dropped.get("command").asText()).isEqualTo("DROP");
    }

    @Test
    void objectModeAndConvertedValues() throws Exception {
        Map<String, String> headers = Map.of("Neon-Connection-String", broker.connectionString());
        HttpResponse<String> response = post(broker, "{\"query\":\"SELECT true AS b, 7::int2 AS s, 1.5::float8 AS f, "
                + "'NaN'::float8 AS nan, 12::int8 AS big, '{\\\"k\\\": [1]}'::jsonb AS j, ARRAY[1,NULL,3] AS a, "
                + "ARRAY['x y','z'] AS ta, 3.10::numeric AS num\"}", headers);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        JsonNode body = JSON.readTree(response.body());
        assertThat(body.get("rowAsArray").asBoolean()).isFalse();
        assertThat(body.get("rows").get(0).toString()).isEqualTo("{\"b\":true,\"s\":7,\"f\":1.5,\"nan\":\"NaN\","
                + "\"big\":\"12\",\"j\":{\"k\":[1]},\"a\":[1,null,3],\"ta\":[\"x y\",\"z\"],\"num\":\"3.10\"}");
    }

    @Test
    void jsonParamsAreConvertedLikeNeon() throws Exception {
        HttpResponse<String> response = sql(broker, "{\"query\":\"SELECT $1::int, $2::bool, $3::jsonb, $4::text[], "
                + "$5::text\",\"params\":[5, true, {\"a\":1}, [\"x\", null, \"q\\\"\"], null]}");
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(JSON.readTree(response.body()).get("rows").toString())
                .isEqualTo("[[\"5\",\"t\",\"{\\\"a\\\": 1}\",\"{x,NULL,\\\"q\\\\\\\"\\\"}\",null]]");
    }

    @Test
    void postgresErrorsAre400WithEveryField() throws Exception {
        HttpResponse<String> response = sql(broker, "{\"query\":\"SELECT * FROM nope\"}");
        assertThat(response.statusCode()).isEqualTo(400);
        JsonNode body = JSON.readTree(response.body());
        assertThat(body.get("message").asText()).isEqualTo("relation \"nope\" does not exist");
        assertThat(body.get("code").asText()).isEqualTo("42P01");
        assertThat(body.get("position").asText()).isEqualTo("15");
        assertThat(body.get("severity").asText()).isEqualTo("ERROR");
        assertThat(body.get("routine").asText()).isEqualTo("parserOpenTable");
        assertThat(body.get("file").asText()).isEqualTo("parse_relation.c");
        assertThat(body.get("line").isTextual()).isTrue();
        for (String field : new String[] {"detail", "hint", "internalPosition", "internalQuery", "where", "table",
                "column", "schema", "dataType", "constraint"}) {
            assertThat(body.has(field)).as(field).isTrue();
            assertThat(body.get(field).isNull()).as(field).isTrue();
        }
        HttpResponse<String> duplicate = sql(broker, "{\"queries\":[{\"query\":\"INSERT INTO items VALUES (1)\"},"
                + "{\"query\":\"INSERT INTO items VALUES (1)\"}]}");
        JsonNode dup = JSON.readTree(duplicate.body());
        assertThat(dup.get("code").asText()).isEqualTo("23505");
        assertThat(dup.get("constraint").asText()).isEqualTo("items_pkey");
        assertThat(dup.get("detail").asText()).isEqualTo("Key (id)=(1) already exists.");
        assertThat(dup.get("table").asText()).isEqualTo("items");
        // the failed batch rolled back: the first insert is gone too
        assertThat(rows("SELECT count(*) FROM items WHERE id = 1")).isEqualTo("[[\"0\"]]");
    }

    @Test
    void batchesRunInOneTransactionWithTheRequestedOptions() throws Exception {
        HttpResponse<String> response = sql(broker, "{\"queries\":[{\"query\":\"SHOW transaction_isolation\"},"
                        + "{\"query\":\"SHOW transaction_read_only\"},{\"query\":\"SELECT $1::int + 1 AS n\","
                        + "\"params\":[\"1\"]},{\"query\":\"SELECT txid_current() = txid_current() AS same\"}]}",
                "Neon-Batch-Isolation-Level", "Serializable", "Neon-Batch-Read-Only", "true",
                "Neon-Batch-Deferrable", "true");
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Neon-Batch-Isolation-Level")).hasValue("Serializable");
        assertThat(response.headers().firstValue("Neon-Batch-Read-Only")).hasValue("true");
        JsonNode results = JSON.readTree(response.body()).get("results");
        assertThat(results.size()).isEqualTo(4);
        assertThat(results.get(0).get("rows").toString()).isEqualTo("[[\"serializable\"]]");
        assertThat(results.get(1).get("rows").toString()).isEqualTo("[[\"on\"]]");
        assertThat(results.get(2).get("rows").toString()).isEqualTo("[[\"2\"]]");

        HttpResponse<String> readOnly = sql(broker, "{\"queries\":[{\"query\":\"INSERT INTO items VALUES (7)\"}]}",
                "Neon-Batch-Read-Only", "true");
        assertThat(readOnly.statusCode()).isEqualTo(400);
        assertThat(JSON.readTree(readOnly.body()).get("code").asText()).isEqualTo("25006");

        HttpResponse<String> bad = sql(broker, "{\"queries\":[]}", "Neon-Batch-Isolation-Level", "Chaotic");
        assertThat(bad.statusCode()).isEqualTo(400);
        assertThat(JSON.readTree(bad.body()).get("message").asText()).isEqualTo("invalid isolation level");

        HttpResponse<String> committed = sql(broker, "{\"queries\":[{\"query\":\"INSERT INTO items VALUES (8)\"},"
                + "{\"query\":\"INSERT INTO items VALUES (9)\"}]}");
        assertThat(committed.statusCode()).as(committed.body()).isEqualTo(200);
        assertThat(rows("SELECT count(*) FROM items WHERE id IN (8, 9)")).isEqualTo("[[\"2\"]]");
    }

    @Test
    void corsPreflight() throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(broker.baseUrl() + "/sql"))
                .method("OPTIONS", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Allow")).hasValue("OPTIONS, POST");
        assertThat(response.headers().firstValue("Access-Control-Allow-Origin")).hasValue("*");
        assertThat(response.headers().firstValue("Access-Control-Allow-Headers")).hasValue(NeonHttp.ALLOW_HEADERS);
        assertThat(response.headers().firstValue("Access-Control-Max-Age")).hasValue("86400");
    }

    @Test
    void badRequests() throws Exception {
        HttpResponse<String> unparsable = sql(broker, "{nope");
        assertThat(unparsable.statusCode()).isEqualTo(400);
        assertThat(JSON.readTree(unparsable.body()).get("message").asText())
                .startsWith("could not parse the HTTP request body");
        HttpResponse<String> noHeader = post(broker, "{\"query\":\"SELECT 1\"}", Map.of());
        assertThat(noHeader.statusCode()).isEqualTo(400);
        HttpResponse<String> noUser = post(broker, "{\"query\":\"SELECT 1\"}",
                Map.of("Neon-Connection-String", "postgresql://db-test1234.db.localhost/app"));
        assertThat(JSON.readTree(noUser.body()).get("message").asText()).isEqualTo("missing username");
    }

    @Test
    void noExistenceLeak() throws Exception {
        String body = "{\"query\":\"SELECT 1\"}";
        HttpResponse<String> wrongPassword = post(broker, body, Map.of("Neon-Connection-String",
                broker.connectionString(TestingBroker.DATABASE_ID, "wrong")));
        HttpResponse<String> unknownDatabase = post(broker, body, Map.of("Neon-Connection-String",
                broker.connectionString("db-nosuchdb", postgres.credentials().password())));
        assertThat(wrongPassword.statusCode()).isEqualTo(400);
        assertThat(unknownDatabase.statusCode()).isEqualTo(400);
        assertThat(wrongPassword.body()).isEqualTo(unknownDatabase.body());
        assertThat(JSON.readTree(wrongPassword.body()).get("message").asText())
                .isEqualTo("password authentication failed for user 'app'");
        // a pooled connection is never reused for a different password
        assertThat(sql(broker, body).statusCode()).isEqualTo(200);
        assertThat(post(broker, body, Map.of("Neon-Connection-String",
                broker.connectionString(TestingBroker.DATABASE_ID, "wrong"))).statusCode()).isEqualTo(400);
    }

    @Test
    void limits() throws Exception {
        HttpResponse<String> tooManyRows = sql(tight, "{\"query\":\"SELECT generate_series(1, 101)\"}");
        assertThat(tooManyRows.statusCode()).isEqualTo(507);
        assertThat(sql(tight, "{\"query\":\"SELECT generate_series(1, 100)\"}").statusCode()).isEqualTo(200);
        HttpResponse<String> tooBig = sql(tight, "{\"query\":\"SELECT repeat('x', 100000)\"}");
        assertThat(tooBig.statusCode()).isEqualTo(507);
        HttpResponse<String> tooLarge = sql(tight, "{\"query\":\"SELECT '" + "y".repeat(70 * 1024) + "'\"}");
        assertThat(tooLarge.statusCode()).isEqualTo(413);
        long start = System.nanoTime();
        HttpResponse<String> slow = sql(tight, "{\"query\":\"SELECT pg_sleep(10)\"}");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
        assertThat(slow.statusCode()).isEqualTo(400);
        assertThat(JSON.readTree(slow.body()).get("code").asText()).isEqualTo("57014");
        // a SET in the request cannot lift the timeout for the next request on the same pooled connection
        HttpResponse<String> lifted = sql(tight, "{\"queries\":[{\"query\":\"SET statement_timeout = 0\"},"
                + "{\"query\":\"SELECT pg_sleep(3)\"}]}");
        assertThat(lifted.statusCode()).isEqualTo(400);
        assertThat(JSON.readTree(lifted.body()).get("code").asText()).isEqualTo("57014");
        // the tight pool holds at most 2 connections
        assertThat(tight.broker.openConnections(TestingBroker.DATABASE_ID)).isLessThanOrEqualTo(2);
        assertThat(sql(tight, "{\"query\":\"SELECT 1\"}").statusCode()).isEqualTo(200);
    }

    @Test
    void clientDisconnectCancelsTheQuery() throws Exception {
        String body = "{\"query\":\"SELECT pg_sleep(20), 'disconnect-marker'\"}";
        try (Socket socket = new Socket("127.0.0.1", broker.port())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST /sql HTTP/1.1\r\nHost: 127.0.0.1\r\nNeon-Connection-String: " + broker.connectionString()
                    + "\r\nContent-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body)
                    .getBytes(StandardCharsets.UTF_8));
            out.flush();
            waitFor("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%disconnect-marker%' "
                    + "AND state = 'active' AND pid <> pg_backend_pid()", "1");
        }
        waitFor("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%disconnect-marker%' "
                + "AND state = 'active' AND pid <> pg_backend_pid()", "0");
    }

    @Test
    void webSocketCancelRequestAndDisconnectCancel() throws Exception {
        URI uri = URI.create("ws://127.0.0.1:" + broker.port() + "/v2?address=" + TestingBroker.DATABASE_ID
                + ".db.localhost:5432");
        WsPeer session = new WsPeer(http, uri);
        // pipelined like the Neon driver: startup, cleartext password and the first query in one go
        session.send(WsPeer.concat(WsPeer.startup("app", "app"),
                WsPeer.passwordMessage(postgres.credentials().password()),
                WsPeer.query("SELECT pg_sleep(20), 'ws-cancel-marker'")));
        byte[] keyData = session.awaitMessage('K');
        waitFor(active("ws-cancel-marker"), "1");
        WsPeer canceller = new WsPeer(http, uri);
        byte[] cancel = new byte[16];
        java.nio.ByteBuffer.wrap(cancel).putInt(16).putInt(80877102).put(keyData, 5, 8);
        canceller.send(cancel);
        byte[] error = session.awaitMessage('E');
        assertThat(new String(error, StandardCharsets.UTF_8)).contains("57014");
        waitFor(active("ws-cancel-marker"), "0");
        session.send(WsPeer.query("SELECT pg_sleep(20), 'ws-drop-marker'"));
        waitFor(active("ws-drop-marker"), "1");
        session.socket.abort();
        waitFor(active("ws-drop-marker"), "0");
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(50))
                .untilAsserted(() -> assertThat(broker.broker.openWebSocketSessions()).isZero());
    }

    @Test
    void webSocketRefusesWrongPasswordAndUnknownDatabaseAlike() throws Exception {
        URI known = URI.create("ws://127.0.0.1:" + broker.port() + "/v2?address=" + TestingBroker.DATABASE_ID
                + ".db.localhost:5432");
        URI unknown = URI.create("ws://127.0.0.1:" + broker.port() + "/v2?address=db-nope.db.localhost:5432");
        WsPeer wrong = new WsPeer(http, known);
        wrong.send(WsPeer.concat(WsPeer.startup("app", "app"), WsPeer.passwordMessage("wrong")));
        WsPeer missing = new WsPeer(http, unknown);
        missing.send(WsPeer.concat(WsPeer.startup("app", "app"),
                WsPeer.passwordMessage(postgres.credentials().password())));
        String first = new String(wrong.awaitMessage('E'), StandardCharsets.UTF_8);
        String second = new String(missing.awaitMessage('E'), StandardCharsets.UTF_8);
        assertThat(first).isEqualTo(second).contains("28P01").contains("password authentication failed for user 'app'");
    }

    private static String active(String marker) {
        return "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%" + marker + "%' AND state = 'active' "
                + "AND pid <> pg_backend_pid()";
    }

    @Test
    void otherRolesAreRefusedLikeAWrongPassword() throws Exception {
        try (Connection c = postgres.connectAsAdmin(); Statement s = c.createStatement()) {
            s.execute("CREATE ROLE other LOGIN PASSWORD 'other-secret'");
            s.execute("GRANT CONNECT ON DATABASE app TO other");
        }
        Map<String, String> other = Map.of("Neon-Connection-String",
                "postgresql://other:other-secret@" + TestingBroker.DATABASE_ID + ".db.localhost/app");
        // another role cannot be checked on the host: refused like a wrong password, cold or while the tenant's own
        // login holds connections, and nothing is resolved (woken, touched) for it
        for (boolean warm : List.of(false, true)) {
            if (warm) {
                assertThat(post(tight, "{\"query\":\"SELECT 1\"}", Map.of("Neon-Connection-String",
                        tight.connectionString())).statusCode()).isEqualTo(200);
            } else {
                tight.broker.evict(TestingBroker.DATABASE_ID);
            }
            int resolvesBefore = tight.resolves.get();
            HttpResponse<String> refused = post(tight, "{\"query\":\"SELECT 1\"}", other);
            assertThat(refused.statusCode()).as("warm: %s", warm).isEqualTo(400);
            assertThat(JSON.readTree(refused.body()).get("message").asText())
                    .isEqualTo("password authentication failed for user 'other'");
            assertThat(tight.resolves.get()).isEqualTo(resolvesBefore);
        }
    }

    @Test
    void poolIsBoundedPerDatabase() throws Exception {
        // 8 concurrent slow requests through a pool of 2: they queue, none fails
        List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> calls = new java.util.ArrayList<>();
        Map<String, String> headers = Map.of("Neon-Connection-String", tight.connectionString());
        for (int i = 0; i < 8; i++) {
            calls.add(java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return post(tight, "{\"query\":\"SELECT pg_sleep(0.2), current_user AS u\"}", headers);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()));
        }
        int maxOpen = 0;
        while (!calls.stream().allMatch(java.util.concurrent.CompletableFuture::isDone)) {
            maxOpen = Math.max(maxOpen, tight.broker.openConnections(TestingBroker.DATABASE_ID));
            Thread.sleep(10);
        }
        for (java.util.concurrent.CompletableFuture<HttpResponse<String>> call : calls) {
            HttpResponse<String> response = call.join();
            assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
            assertThat(JSON.readTree(response.body()).get("rows").get(0).get("u").asText()).isEqualTo("app");
        }
        assertThat(maxOpen).isBetween(1, 2);
        // a pooled connection never answers for a wrong password
        assertThat(post(tight, "{\"query\":\"SELECT 1\"}", Map.of("Neon-Connection-String",
                "postgresql://app:wrong-password@" + TestingBroker.DATABASE_ID + ".db.localhost/app")).statusCode())
                .isEqualTo(400);
    }

    @Test
    void getIsRefused() throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(broker.baseUrl() + "/sql"))
                .GET().build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(400);
    }

    @Test
    void metricsAreRecorded() throws Exception {
        sql(broker, "{\"query\":\"SELECT 1\"}");
        assertThat(broker.registry.find("palisade.broker.requests").tag("route", "sql").timers()).isNotEmpty();
        assertThat(broker.registry.find("palisade.broker.pool.connections")
                .tag("database", TestingBroker.DATABASE_ID).gauges()).hasSize(2);
    }

    private void waitFor(String query, String expected) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        String last = null;
        while (System.nanoTime() < deadline) {
            try (Connection c = postgres.connectAsAdmin(); Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery(query)) {
                rs.next();
                last = rs.getString(1);
                if (expected.equals(last)) {
                    return;
                }
            }
            Thread.sleep(100);
        }
        throw new AssertionError(query + " gave " + last + ", expected " + expected);
    }

    private String rows(String query) throws Exception {
        return JSON.readTree(sql(broker, "{\"query\":\"" + query + "\"}").body()).get("rows").toString();
    }
}
