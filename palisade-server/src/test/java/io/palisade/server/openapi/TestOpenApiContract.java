package io.palisade.server.openapi;

import static org.awaitility.Awaitility.await;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.server.TestingPalisade;
import io.palisade.server.hostile.RegisteredRoutes;
import io.swagger.v3.parser.OpenAPIV3Parser;
import io.swagger.v3.parser.core.models.ParseOptions;
import io.swagger.v3.parser.core.models.SwaggerParseResult;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The OpenAPI document served at {@code GET /v1/openapi.json} is the contract of the live server: it is valid OpenAPI
 * 3.1 whose examples match their schemas, it documents exactly the routes the router has (method and path, so a stale
 * entry fails too), and every response of every operation, driven here through a database's life on the process
 * rung (and its errors), has a documented status and a body that validates against the documented schema.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestOpenApiContract {
    /**
     * The web console is HTML for people, in its own session; it is not part of the JSON API the document
     * describes.
     */
    private static final String UNDOCUMENTED_PREFIX = "/console";
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private TestingPalisade palisade;
    private String specJson;
    private OpenApiContract contract;
    private final List<String> violations = new ArrayList<>();
    private final Set<String> exercised = new TreeSet<>();

    @BeforeAll
    void start() throws Exception {
        palisade = new TestingPalisade();
        palisade.requireUsable("process");
        HttpResponse<String> spec = send("GET", "/v1/openapi.json", null, Map.of());
        assertThat(spec.statusCode()).as(spec.body()).isEqualTo(200);
        assertThat(spec.headers().firstValue("Content-Type")).hasValueSatisfying(type ->
                assertThat(type).startsWith("application/json"));
        specJson = spec.body();
        contract = OpenApiContract.parse(specJson);
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.server().store().list("acct-admin")
                    .forEach(db -> palisade.delete("/v1/databases/" + db.id()));
            palisade.close();
        }
    }

    @Test
    void theDocumentIsValidOpenApi31WithValidExamples() {
        ParseOptions options = new ParseOptions();
        options.setResolve(true);
        options.setValidateInternalRefs(true);
        SwaggerParseResult parsed = new OpenAPIV3Parser().readContents(specJson, null, options);
        assertThat(parsed.getMessages()).as("OpenAPI parser messages").isEmpty();
        assertThat(parsed.getOpenAPI().getOpenapi()).isEqualTo("3.1.0");
        JsonNode document = contract.document();
        assertThat(document.path("jsonSchemaDialect").asText())
                .isEqualTo("https://json-schema.org/draft/2020-12/schema");

        List<String> incomplete = new ArrayList<>();
        Set<String> operationIds = new HashSet<>();
        document.path("paths").properties().forEach(path -> path.getValue().properties().forEach(op -> {
            String name = op.getKey() + " " + path.getKey();
            JsonNode operation = op.getValue();
            if (!operationIds.add(operation.path("operationId").asText())) {
                incomplete.add(name + ": missing or duplicate operationId");
            }
            if (operation.path("summary").asText().isBlank()) {
                incomplete.add(name + ": no summary");
            }
            operation.path("responses").properties().forEach(response -> {
                JsonNode resolved = response.getValue().has("$ref")
                        ? document.at(response.getValue().get("$ref").asText().substring(1)) : response.getValue();
                resolved.path("content").properties().forEach(media -> {
                    if (media.getValue().path("examples").isEmpty()) {
                        incomplete.add(name + " " + response.getKey() + " " + media.getKey() + ": no example");
                    }
                });
            });
            operation.path("requestBody").path("content").properties().forEach(media -> {
                if (media.getValue().path("examples").isEmpty()) {
                    incomplete.add(name + " request " + media.getKey() + ": no example");
                }
            });
        }));
        assertThat(incomplete).isEmpty();
        assertThat(contract.invalidExamples()).as("examples that do not match their schema").isEmpty();
    }

    @Test
    void theContractRefusesWhatItDoesNotDocument() throws Exception {
        JsonNode example = contract.document().at("/paths/" + OpenApiContract.escape("/v1/databases/{id}")
                + "/get/responses/200/content/application~1json/examples/database/value");
        String good = example.toString();
        assertThat(contract.violations("GET", "/v1/databases/{id}", 200, "application/json", good)).isEmpty();
        com.fasterxml.jackson.databind.node.ObjectNode leaky = (com.fasterxml.jackson.databind.node.ObjectNode)
                MAPPER.readTree(good);
        leaky.put("password", "s3cret");
        assertThat(contract.violations("GET", "/v1/databases/{id}", 200, "application/json", leaky.toString()))
                .as("an undocumented field").isNotEmpty();
        com.fasterxml.jackson.databind.node.ObjectNode wrongType = (com.fasterxml.jackson.databind.node.ObjectNode)
                MAPPER.readTree(good);
        wrongType.put("created_at", "yesterday");
        assertThat(contract.violations("GET", "/v1/databases/{id}", 200, "application/json", wrongType.toString()))
                .as("a time that is not RFC 3339").isNotEmpty();
        assertThat(contract.violations("GET", "/v1/databases/{id}", 418, "application/json", good))
                .as("an undocumented status").isNotEmpty();
        assertThat(contract.violations("GET", "/v1/databases/{id}", 200, "text/html", good))
                .as("an undocumented content type").isNotEmpty();
        assertThat(contract.violations("PUT", "/v1/databases/{id}", 200, "application/json", good))
                .as("an undocumented operation").isNotEmpty();
    }

    @Test
    void everyRouteIsDocumentedAndEveryDocumentedRouteExists() {
        Set<String> routes = new TreeSet<>();
        for (String route : RegisteredRoutes.of(palisade.server())) {
            String method = route.substring(0, route.indexOf(' '));
            String path = route.substring(route.indexOf(' ') + 1);
            if (!path.startsWith(UNDOCUMENTED_PREFIX)) {
                // a WebSocket is documented as the GET that upgrades
                routes.add((method.equals("WS") ? "GET" : method) + " " + path);
            }
        }
        Set<String> documented = contract.operations();
        Set<String> undocumented = new TreeSet<>(routes);
        undocumented.removeAll(documented);
        Set<String> stale = new TreeSet<>(documented);
        stale.removeAll(routes);
        assertThat(undocumented).as("routes the server has that the document lacks").isEmpty();
        assertThat(stale).as("documented routes the server does not have").isEmpty();
    }

    @Test
    void everyOperationAnswersAsDocumented() throws Exception {
        String key = palisade.adminKey();
        String d = "/v1/databases/{id}";
        conforms("GET", "/v1/health", Map.of(), null, null, 200);
        conforms("GET", "/v1/openapi.json", Map.of(), null, null, 200);
        conforms("GET", "/metrics", Map.of(), null, key, 200);
        conforms("GET", "/metrics", Map.of(), null, null, 401);

        // account and request errors
        conforms("GET", "/v1/databases", Map.of(), null, null, 401);
        conforms("GET", "/v1/databases", Map.of(), null, "pk_" + "0".repeat(40), 401);
        conforms("POST", "/v1/databases", Map.of(), "{\"lable\":\"typo\"}", key, 400);
        conforms("POST", "/v1/databases", Map.of(), "{\"label\":", key, 400);
        conforms("POST", "/v1/databases", Map.of(), "{\"plan\":\"huge\"}", key, 400);
        HttpResponse<String> xml = send("POST", "/v1/databases", "<db/>",
                Map.of("Authorization", "Bearer " + key, "Content-Type", "application/xml"));
        check("POST", "/v1/databases", xml, 415);
        conforms("POST", "/v1/databases", Map.of(), "{\"restore\":{\"from\":\"db-nothere1\"}}", key, 404);

        // a database's life
        JsonNode created = json(conforms("POST", "/v1/databases", Map.of(),
                "{\"label\":\"contract-a\",\"isolation\":\"process\",\"labels\":{\"team\":\"api\"}}", key, 201));
        String id = created.path("id").asText();
        Map<String, String> db = Map.of("id", id);
        Map<String, String> unknown = Map.of("id", "db-nothere1");
        conforms("GET", "/v1/databases", Map.of(), null, key, 200);
        conforms("GET", d, db, null, key, 200);
        conforms("GET", d, unknown, null, key, 404);
        conforms("GET", d, db, null, null, 401);
        conforms("GET", d + "/connection", db, null, key, 200);
        conforms("GET", d + "/stats", db, null, key, 200);
        conforms("GET", d + "/logs?lines=20", db, null, key, 200);
        conforms("GET", d + "/logs?lines=0", db, null, key, 400);
        conforms("GET", d + "/metrics?window=1h", db, null, key, 200);
        conforms("GET", d + "/metrics?window=1d", db, null, key, 200);
        conforms("GET", d + "/metrics?window=1y", db, null, key, 400);
        conforms("POST", d + "/restart", db, null, key, 200);
        conforms("POST", d + "/suspend", db, null, key, 409);
        conforms("POST", d + "/resume", db, null, key, 200);

        // SQL over HTTP and the WebSocket, with the secrets of a rotation
        JsonNode rotated = json(conforms("POST", d + "/credentials/rotate", db, null, key, 200));
        Map<String, String> neon = Map.of("Neon-Connection-String", rotated.path("serverless_url").asText(),
                "Neon-Array-Mode", "true", "Neon-Raw-Text-Output", "true");
        check("POST", "/sql", send("POST", "/sql", "{\"query\":\"SELECT $1::int AS n\",\"params\":[\"42\"]}", neon),
                200);
        check("POST", "/sql", send("POST", "/sql", "{\"queries\":[{\"query\":\"SELECT 1\"},{\"query\":\"SELECT 2\"}]}",
                neon), 200);
        check("POST", "/sql", send("POST", "/sql", "{\"query\":\"SELECT * FROM nope\"}", neon), 400);
        check("POST", "/sql", send("POST", "/sql", "{\"query\":\"SELECT 1\"}", Map.of("Neon-Connection-String",
                created.path("serverless_url").asText())), 400);
        check("GET", "/sql", send("GET", "/sql", null, Map.of()), 400);
        check("OPTIONS", "/sql", send("OPTIONS", "/sql", null, Map.of()), 200);
        WebSocket ws = http.newWebSocketBuilder().buildAsync(URI.create(palisade.apiUrl().replace("http:", "ws:")
                + "/v2"), new WebSocket.Listener() {}).get(20, TimeUnit.SECONDS);
        exercised.add("GET /v2 101");
        ws.abort();

        // the PandaStack broker contract with the database's broker token
        pandaStackRoutes(id, rotated.path("broker_token").asText());

        // backups, settings, operations, fork, restore
        conforms("GET", d + "/backups", db, null, key, 200);
        // one base backup at a time (a second gets the documented 409): let the one the restart above began end
        await("no base backup running").atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(200))
                .until(() -> {
                    for (JsonNode backup : palisade.get("/v1/databases/" + id + "/backups").json().path("backups")) {
                        if (backup.path("state").asText().equals("running")) {
                            return false;
                        }
                    }
                    return true;
                });
        conforms("POST", d + "/backups", db, null, key, 201);
        conforms("PATCH", d + "/backup-settings", db, "{\"durability\":\"sync\",\"retention_seconds\":1209600}", key,
                200);
        conforms("PATCH", d + "/backup-settings", db, "{\"retention_seconds\":1}", key, 400);
        JsonNode fork = json(conforms("POST", d + "/fork", db, "{\"label\":\"contract-fork\"}", key, 201, 202));
        conforms("POST", d + "/restore", db, "{\"latest\":true}", key, 200);
        conforms("POST", d + "/restore", db, "{\"target_lsn\":\"nonsense\"}", key, 400);
        conforms("GET", d + "/operations", db, null, key, 200);
        conforms("DELETE", d, Map.of("id", fork.path("id").asText()), null, key, 204);

        // a move to the database rung, followed to its end
        conforms("GET", d + "/move", db, null, key, 404);
        conforms("POST", d + "/isolation", db, "{\"isolation\":\"nowhere\"}", key, 400);
        conforms("POST", d + "/isolation", db, "{\"isolation\":\"database\"}", key, 202);
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (!json(conforms("GET", d + "/move", db, null, key, 200)).path("finished").asBoolean()) {
            assertThat(System.nanoTime()).as("the move finishes within 3 minutes").isLessThan(deadline);
            Thread.sleep(500);
        }
        conforms("DELETE", d + "/move", db, null, key, 200, 409);

        // deletes
        conforms("DELETE", d + "?keep_backups_days=0", db, null, key, 400);
        conforms("DELETE", d, db, null, key, 204);
        conforms("DELETE", d, db, null, key, 404);

        assertThat(violations).as("responses that do not match the document").isEmpty();
        Set<String> operations = new TreeSet<>();
        exercised.forEach(call -> operations.add(call.substring(0, call.lastIndexOf(' '))));
        Set<String> untried = new TreeSet<>(contract.operations());
        untried.removeAll(operations);
        assertThat(untried).as("documented operations this test did not call").isEmpty();
        System.out.println("exercised (operation and status): " + exercised);
    }

    /** The broker routes under {@code broker_url}, PandaStack's contract, each answered as documented. */
    private void pandaStackRoutes(String id, String token) throws Exception {
        String p = "/v1/databases/{id}/proxy/v1";
        Map<String, String> db = Map.of("id", id);
        conforms("POST", p + "/query", db, "{\"database\":\"pandastack\",\"sql\":\"SELECT $1::int AS n\","
                + "\"params\":[7]}", token, 200);
        conforms("POST", p + "/query", db, "{\"database\":\"pandastack\",\"sql\":\"SELECT 1::int8, 1.5::numeric, "
                + "'{\\\"a\\\":1}'::jsonb, ARRAY[1,2], now(), current_date, '\\\\x6869'::bytea, true, 'NaN'::float8, "
                + "NULL\"}", token, 200);
        conforms("POST", p + "/query", db, "{\"sql\":\"SELECT 1\"}", token, 400);
        conforms("POST", p + "/query", db, "{\"database\":\"pandastack\",\"sql\":\"SELECT * FROM nope\"}", token,
                400);
        conforms("POST", p + "/query", db, "{\"database\":\"pandastack\",\"sql\":\"SELECT 1\"}", "pbt_invented",
                401);
        conforms("POST", p + "/exec", db, "{\"database\":\"pandastack\",\"sql\":\"CREATE TABLE t (n int)\"}",
                token, 200);
        conforms("POST", p + "/transaction", db, "{\"database\":\"pandastack\",\"statements\":[{\"sql\":"
                + "\"INSERT INTO t VALUES ($1)\",\"params\":[1]},{\"sql\":\"SELECT n FROM t\"}]}", token, 200);
        conforms("GET", p + "/health", db, null, null, 200);
        conforms("GET", p + "/health", db, null, token, 200);
        conforms("GET", p + "/info", db, null, token, 200);
        conforms("GET", p + "/databases", db, null, token, 200);
        conforms("POST", p + "/databases", db, "{\"name\":\"reports\"}", token, 201);
        conforms("DELETE", p + "/databases/{name}", Map.of("id", id, "name", "reports"), null, token, 204);
        conforms("DELETE", p + "/databases/{name}", Map.of("id", id, "name", "postgres"), null, token, 403);
    }

    /**
     * Calls {@code method template} (path parameters filled in, a query string allowed after the template) with an
     * optional JSON body and bearer key, records any way the answer differs from the document, and returns it. The
     * status must be one of {@code expected}: the test drives each case on purpose.
     */
    private HttpResponse<String> conforms(String method, String template, Map<String, String> pathParams, String body,
            String bearer, int... expected) throws Exception {
        String path = template;
        for (var param : pathParams.entrySet()) {
            path = path.replace("{" + param.getKey() + "}", param.getValue());
        }
        Map<String, String> headers = new java.util.LinkedHashMap<>();
        if (bearer != null) {
            headers.put("Authorization", "Bearer " + bearer);
        }
        if (body != null) {
            headers.put("Content-Type", "application/json");
        }
        HttpResponse<String> response = send(method, path, body, headers);
        int query = template.indexOf('?');
        check(method, query < 0 ? template : template.substring(0, query), response, expected);
        return response;
    }

    /** Checks a response against the document for {@code method template}: the contract helper in one call. */
    private void check(String method, String template, HttpResponse<String> response, int... expected) {
        int status = response.statusCode();
        exercised.add(method + " " + template + " " + status);
        if (java.util.Arrays.stream(expected).noneMatch(s -> s == status)) {
            violations.add(method + " " + template + ": expected " + java.util.Arrays.toString(expected) + ", got "
                    + status + " " + response.body());
        }
        violations.addAll(contract.violations(method, template, status,
                response.headers().firstValue("Content-Type").orElse(null), response.body()));
    }

    private HttpResponse<String> send(String method, String path, String body, Map<String, String> headers)
            throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(palisade.apiUrl() + path))
                .timeout(Duration.ofMinutes(3))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body));
        headers.forEach(request::header);
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static JsonNode json(HttpResponse<String> response) throws IOException {
        return MAPPER.readTree(response.body());
    }
}
