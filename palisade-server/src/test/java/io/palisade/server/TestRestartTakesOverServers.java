package io.palisade.server;

import static io.palisade.server.AbstractTestMoves.execute;
import static io.palisade.server.AbstractTestMoves.scalar;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A restart of palisade and its tenants' PostgreSQL servers: with {@code agent.stop-instances-on-exit=false} the
 * servers of the process rung and the shared servers keep running and the next start takes them over (the same
 * postmaster, not a new one); by default they stop with palisade and start again.
 */
class TestRestartTakesOverServers {
    private static final String START_TIME = "SELECT pg_postmaster_start_time()::text";

    @Test
    void keptServersAreTakenOverByTheNextStart() throws SQLException {
        Map<String, String> before = new LinkedHashMap<>();
        Map<String, String> after = restart(Map.of("agent.stop-instances-on-exit", "false"), before);
        assertThat(after).as("the same postmasters").isEqualTo(before);
    }

    @Test
    void byDefaultTheServersStopWithPalisadeAndStartAgain() throws SQLException {
        Map<String, String> before = new LinkedHashMap<>();
        Map<String, String> after = restart(Map.of(), before);
        before.forEach((id, started) -> assertThat(after.get(id)).as(id).isNotEqualTo(started));
    }

    /**
     * A process-rung and a database-rung tenant with a row each, palisade restarted; returns each tenant's postmaster
     * start time after the restart ({@code before}: before it) once its row has been read back through the proxy.
     */
    private static Map<String, String> restart(Map<String, String> settings, Map<String, String> before)
            throws SQLException {
        Map<String, String> after = new LinkedHashMap<>();
        try (TestingPalisade palisade = new TestingPalisade(settings)) {
            List<JsonNode> tenants = List.of(create(palisade, "process"), create(palisade, "database"));
            try {
                for (JsonNode tenant : tenants) {
                    execute(url(tenant), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)");
                    before.put(id(tenant), scalar(url(tenant), START_TIME));
                }
                palisade.restart();
                for (JsonNode tenant : tenants) {
                    assertThat(scalar(url(tenant), "SELECT sum(x) FROM kept")).isEqualTo("7");
                    after.put(id(tenant), scalar(url(tenant), START_TIME));
                }
            } finally {
                for (JsonNode tenant : tenants) {
                    palisade.delete("/v1/databases/" + id(tenant));
                }
                palisade.server().sharedServers().removeEmptyServers();
            }
        }
        return after;
    }

    private static JsonNode create(TestingPalisade palisade, String isolation) {
        TestingPalisade.Response created = palisade.post("/v1/databases", "{\"isolation\":\"" + isolation + "\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        return created.json();
    }

    private static String id(JsonNode tenant) {
        return tenant.get("id").asText();
    }

    private static String url(JsonNode tenant) {
        return tenant.get("connection_url").asText();
    }
}
