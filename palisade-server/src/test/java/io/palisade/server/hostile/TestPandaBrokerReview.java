package io.palisade.server.hostile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.server.TestingPalisade;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A hostile review of PandaStack's broker routes under {@code broker_url} (issue #14), each attack replayed against a
 * live palisade on the process rung: path tricks that might skip the API's key check, databases made inside the
 * tenant's server while a move copies it, and the server's database limit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestPandaBrokerReview {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = TestingPalisade.requiring("process", Map.of("agent.reconcile-interval", "500ms"));
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.server().store().list("acct-admin").forEach(r -> palisade.delete("/v1/databases/" + r.id()));
            palisade.close();
        }
    }

    private JsonNode create(String label, String isolation) {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"" + label + "\",\"isolation\":\"" + isolation + "\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        return created.json();
    }

    private HttpResponse<String> broker(JsonNode db, String method, String path, String body) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(db.get("broker_url").asText() + path))
                .timeout(Duration.ofMinutes(2))
                .header("Authorization", "Bearer " + db.get("broker_token").asText())
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body));
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** One request as raw bytes, so that no client normalises the path; returns the status line and body. */
    private String raw(String method, String path) throws Exception {
        try (Socket socket = new Socket("127.0.0.1", palisade.server().apiPort())) {
            socket.setSoTimeout(10_000);
            OutputStream out = socket.getOutputStream();
            out.write((method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            InputStream in = socket.getInputStream();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void pathTricksUnderProxyNeverSkipTheApiKey() throws Exception {
        JsonNode db = create("review-paths", "process");
        String id = db.get("id").asText();
        String password = db.get("password").asText();
        List<String> paths = List.of(
                "/v1/databases/" + id + "/proxy/../connection",
                "/v1/databases/" + id + "/proxy/%2e%2e/connection",
                "/v1/databases/" + id + "/proxy/..%2fconnection",
                "/v1/databases/" + id + "/proxy%2f../connection",
                "/v1/databases/" + id + "/proxy;x/../connection",
                "/v1/databases/" + id + "/proxy/v1/../../connection",
                "/v1/databases/" + id + "/proxy/../../" + id,
                "/v1/databases/" + id + "/proxy/",
                "/v1/databases/" + id + "/proxy",
                "/v1/databases//proxy/../" + id + "/connection",
                "/v1/databases/" + id + "/./proxy/../connection",
                "/v1/databases/" + id + "//proxy/../connection",
                "/v1/databases/" + id + "/proxy/v1/../../metrics",
                "/v1/databases/" + id + "/proxy/../credentials/rotate");
        for (String path : paths) {
            for (String method : List.of("GET", "POST")) {
                String answer = raw(method, path);
                String status = answer.lines().findFirst().orElse("");
                System.out.printf("review paths: %s %s -> %s%n", method, path, status);
                assertThat(status).as(method + " " + path + ": " + answer).doesNotContain(" 200 ", " 201 ", " 202 ");
                assertThat(answer).as(method + " " + path).doesNotContain(password);
            }
        }
        // the password was not rotated by any of them
        assertThat(palisade.get("/v1/databases/" + id + "/connection").body()).contains(password);
    }

    /**
     * A database made inside the server while a move copies the tenant's one is not left behind: the move copies one
     * database and removes the source, so a create during it is refused (and a move that finds one more at the
     * cutover stops).
     */
    @Test
    void aDatabaseMadeDuringAMoveIsNotLost() throws Exception {
        palisade.requireUsable("database");
        JsonNode db = create("review-move", "process");
        String id = db.get("id").asText();
        // enough rows that the copy lasts well beyond the test's create (an empty one can be over in a moment)
        assertThat(broker(db, "POST", "/v1/exec", "{\"database\":\"pandastack\",\"sql\":\"CREATE TABLE t (n int); "
                + "INSERT INTO t SELECT generate_series(1, 300000)\"}").statusCode()).isEqualTo(200);
        TestingPalisade.Response started = palisade.post("/v1/databases/" + id + "/isolation",
                "{\"isolation\":\"database\"}");
        assertThat(started.status()).as(started.body()).isEqualTo(202);
        // once the copy runs the source's databases have been counted
        await("the copy").atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(20)).until(() -> {
            JsonNode move = palisade.get("/v1/databases/" + id + "/move").json();
            return move.path("finished").asBoolean() || move.path("phase").asText().equals("copying");
        });
        HttpResponse<String> made = broker(db, "POST", "/v1/databases", "{\"name\":\"made_during_move\"}");
        System.out.printf("review move: create during the move -> %d %s%n", made.statusCode(), made.body());
        boolean created = made.statusCode() == 201;
        if (created) {
            HttpResponse<String> filled = broker(db, "POST", "/v1/exec", "{\"database\":\"made_during_move\",\"sql\":"
                    + "\"CREATE TABLE precious (v text); INSERT INTO precious VALUES ('keep me')\"}");
            System.out.printf("review move: filled -> %d %s%n", filled.statusCode(), filled.body());
        }
        JsonNode[] last = new JsonNode[1];
        await("the move's end").atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofMillis(200)).until(() -> {
            last[0] = palisade.get("/v1/databases/" + id + "/move").json();
            return last[0].path("finished").asBoolean();
        });
        System.out.printf("review move: %s%n", last[0]);
        String rung = palisade.get("/v1/databases/" + id).json().get("isolation").asText();
        if (created) {
            // what the tenant made must still be there: the database stays where it was, with it
            assertThat(rung).as("a move that would leave the database made during it behind must not switch: %s",
                    last[0]).isEqualTo("process");
            HttpResponse<String> kept = broker(db, "POST", "/v1/query", "{\"database\":\"made_during_move\",\"sql\":"
                    + "\"SELECT v FROM precious\"}");
            assertThat(kept.body()).contains("keep me");
        } else {
            assertThat(made.statusCode()).as(made.body()).isEqualTo(409);
            assertThat(rung).isEqualTo("database");
        }
    }

    /**
     * A database that appears inside the source's server after the copy began (a create that passed its check just
     * before the move started, or made by any other way) stops the move at the cutover instead of being removed with
     * the source.
     */
    @Test
    void aDatabaseThatAppearsDuringTheCopyStopsTheMove() throws Exception {
        palisade.requireUsable("database");
        JsonNode db = create("review-move-late", "process");
        String id = db.get("id").asText();
        // enough rows that the copy lasts well beyond the test's CREATE DATABASE
        assertThat(broker(db, "POST", "/v1/exec", "{\"database\":\"pandastack\",\"sql\":\"CREATE TABLE t (n int); "
                + "INSERT INTO t SELECT generate_series(1, 300000)\"}").statusCode()).isEqualTo(200);
        TestingPalisade.Response started = palisade.post("/v1/databases/" + id + "/isolation",
                "{\"isolation\":\"database\"}");
        assertThat(started.status()).as(started.body()).isEqualTo(202);
        await("the copy").atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(20)).until(() -> {
            JsonNode move = palisade.get("/v1/databases/" + id + "/move").json();
            return move.path("finished").asBoolean() || move.path("phase").asText().equals("copying");
        });
        try (java.sql.Connection admin = io.palisade.agent.AdminConnection.open(
                palisade.server().service().adminAccess(id), "postgres");
                java.sql.Statement statement = admin.createStatement()) {
            statement.execute("CREATE DATABASE late OWNER " + db.get("username").asText());
        }
        JsonNode[] last = new JsonNode[1];
        await("the move's end").atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofMillis(200)).until(() -> {
            last[0] = palisade.get("/v1/databases/" + id + "/move").json();
            return last[0].path("finished").asBoolean();
        });
        System.out.printf("review late database: %s%n", last[0]);
        assertThat(last[0].get("phase").asText()).as(last[0].toString()).isEqualTo("failed");
        assertThat(last[0].get("detail").asText()).contains("more than one database", "late");
        assertThat(palisade.get("/v1/databases/" + id).json().get("isolation").asText()).isEqualTo("process");
        HttpResponse<String> list = broker(db, "GET", "/v1/databases", null);
        assertThat(list.body()).contains("\"late\"");
    }

    /**
     * The tenant owns the databases it makes and may flag one {@code IS_TEMPLATE}: it is still listed, counted
     * against the server's limit and droppable through the API.
     */
    @Test
    void aDatabaseFlaggedAsTemplateStaysTheTenantsOwn() throws Exception {
        JsonNode db = create("review-template", "process");
        assertThat(broker(db, "POST", "/v1/databases", "{\"name\":\"hidden\"}").statusCode()).isEqualTo(201);
        HttpResponse<String> flag = broker(db, "POST", "/v1/exec", "{\"database\":\"pandastack\",\"sql\":"
                + "\"ALTER DATABASE hidden IS_TEMPLATE true\"}");
        System.out.printf("review template: flag -> %d %s%n", flag.statusCode(), flag.body());
        assertThat(flag.statusCode()).as(flag.body()).isEqualTo(200);
        HttpResponse<String> list = broker(db, "GET", "/v1/databases", null);
        System.out.printf("review template: list -> %s%n", list.body());
        assertThat(JSON.readTree(list.body()).get("databases").findValuesAsText("name")).contains("hidden");
        HttpResponse<String> drop = broker(db, "DELETE", "/v1/databases/hidden", null);
        System.out.printf("review template: drop -> %d %s%n", drop.statusCode(), drop.body());
        assertThat(drop.statusCode()).as(drop.body()).isEqualTo(204);
        assertThat(broker(db, "GET", "/v1/databases", null).body()).doesNotContain("\"hidden\"");
    }

    /** Concurrent creates at the server's limit of 100 databases: at most one more is made, not one per request. */
    @Test
    void concurrentCreatesStopAtTheLimit() throws Exception {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"review-limit\",\"isolation\":\"process\",\"plan\":\"medium\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        JsonNode db = created.json();
        String id = db.get("id").asText();
        // postgres, the tenant's own and 97 more: room for one
        try (java.sql.Connection admin = io.palisade.agent.AdminConnection.open(
                palisade.server().service().adminAccess(id), "postgres");
                java.sql.Statement statement = admin.createStatement()) {
            for (int i = 0; i < 97; i++) {
                statement.execute("CREATE DATABASE filler_" + i + " OWNER " + db.get("username").asText()
                        + " STRATEGY FILE_COPY");
            }
        }
        List<java.util.concurrent.Future<HttpResponse<String>>> answers = new java.util.ArrayList<>();
        try (var threads = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < 12; i++) {
                String name = "burst_" + i;
                answers.add(threads.submit(() -> broker(db, "POST", "/v1/databases", "{\"name\":\"" + name
                        + "\"}")));
            }
        }
        int made = 0;
        for (var answer : answers) {
            HttpResponse<String> response = answer.get();
            System.out.printf("review limit: %d %s%n", response.statusCode(), response.body());
            made += response.statusCode() == 201 ? 1 : 0;
        }
        assertThat(made).as("databases made past 99 by 12 concurrent creates").isEqualTo(1);
        palisade.delete("/v1/databases/" + id);
    }

    /**
     * {@code v1/health} without valid credentials (none, another account's key, another database's token, an unknown
     * id) answers the same, never checking the database (only vm databases suspend, so waking is not shown here).
     */
    @Test
    void healthWithoutValidCredentialsTellsNothing() throws Exception {
        JsonNode db = create("review-health", "process");
        JsonNode other = create("review-health-other", "process");
        String id = db.get("id").asText();
        String stranger = palisade.newAccount("review-health-stranger");
        String unknownUrl = db.get("broker_url").asText().replace(id, "db-zzzzzzzz");
        List<String> bearers = java.util.Arrays.asList(null, stranger, other.get("broker_token").asText(), "x");
        for (String url : List.of(db.get("broker_url").asText(), unknownUrl)) {
            for (String bearer : bearers) {
                HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url + "/v1/health"));
                if (bearer != null) {
                    request.header("Authorization", "Bearer " + bearer);
                }
                HttpResponse<String> health = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
                assertThat(health.statusCode()).isEqualTo(200);
                assertThat(JSON.readTree(health.body()).get("postgres").asText()).isEqualTo("unchecked");
            }
        }
    }
}
