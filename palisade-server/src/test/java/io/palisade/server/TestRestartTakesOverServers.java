package io.palisade.server;

import static io.palisade.server.AbstractTestMoves.execute;
import static io.palisade.server.AbstractTestMoves.scalar;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.host.PostgresServer;
import io.palisade.testing.TestingDirectories;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A restart of palisade and its tenants' PostgreSQL servers: with {@code agent.stop-instances-on-exit=false} the
 * servers of the process rung and the shared servers keep running, and the next {@code palisade serve} (another JVM)
 * takes them over: the same postmasters, not new ones. By default they stop with palisade and start again.
 */
class TestRestartTakesOverServers {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final String START_TIME = "SELECT pg_postmaster_start_time()::text";
    private static final String KEY = "pk_takeover_test_key_0123456789";

    @Test
    void keptServersAreTakenOverByTheNextPalisade() throws Exception {
        Map<String, String> before = new LinkedHashMap<>();
        Map<String, String> after = restart("false", before);
        assertThat(after).as("the same postmasters").isEqualTo(before);
    }

    @Test
    void byDefaultTheServersStopWithPalisadeAndStartAgain() throws Exception {
        Map<String, String> before = new LinkedHashMap<>();
        Map<String, String> after = restart("true", before);
        before.forEach((id, started) -> assertThat(after.get(id)).as(id).isNotEqualTo(started));
    }

    /**
     * A process-rung and a database-rung tenant with a row each on one {@code palisade serve}, stopped (SIGTERM) and
     * started again on the same data directory and proxy port; returns each tenant's postmaster start time after the
     * restart ({@code before}: before it) once its row has been read back through the proxy.
     */
    private static Map<String, String> restart(String stopInstancesOnExit, Map<String, String> before)
            throws Exception {
        Path work = TestingDirectories.newWorkDir("takeover");
        Path dataDir = work.resolve("data");
        Map<String, String> settings = Map.of("agent.stop-instances-on-exit", stopInstancesOnExit,
                "proxy.port", Integer.toString(PostgresServer.freePort()));
        Map<String, String> after = new LinkedHashMap<>();
        try {
            List<JsonNode> tenants;
            try (TestingPalisadeProcess first = new TestingPalisadeProcess(dataDir, KEY, settings)) {
                tenants = List.of(create(first, "process"), create(first, "database"));
                for (JsonNode tenant : tenants) {
                    execute(url(tenant), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)");
                    before.put(id(tenant), scalar(url(tenant), START_TIME));
                }
            } // SIGTERM: a graceful stop
            // the next palisade stops everything when it ends, whatever the first one was told
            try (TestingPalisadeProcess second = new TestingPalisadeProcess(dataDir, KEY,
                    Map.of("proxy.port", settings.get("proxy.port")))) {
                for (JsonNode tenant : tenants) {
                    assertThat(scalar(url(tenant), "SELECT sum(x) FROM kept")).isEqualTo("7");
                    after.put(id(tenant), scalar(url(tenant), START_TIME));
                    assertThat(send(second, "DELETE", "/v1/databases/" + id(tenant), null).statusCode())
                            .isBetween(200, 204);
                }
            }
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
        return after;
    }

    private static JsonNode create(TestingPalisadeProcess serve, String isolation) throws Exception {
        HttpResponse<String> created = send(serve, "POST", "/v1/databases", "{\"isolation\":\"" + isolation + "\"}");
        assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
        return MAPPER.readTree(created.body());
    }

    private static HttpResponse<String> send(TestingPalisadeProcess serve, String method, String path, String body)
            throws Exception {
        HttpRequest request = TestControlPlaneCrash.request(serve, KEY, path).header("Content-Type", "application/json")
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body))
                .build();
        try (HttpClient http = HttpClient.newHttpClient()) {
            return http.send(request, HttpResponse.BodyHandlers.ofString());
        }
    }

    private static String id(JsonNode tenant) {
        return tenant.get("id").asText();
    }

    private static String url(JsonNode tenant) {
        return tenant.get("connection_url").asText();
    }
}
