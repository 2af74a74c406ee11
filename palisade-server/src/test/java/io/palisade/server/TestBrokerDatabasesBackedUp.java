package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A database the tenant made inside its server through the broker's {@code v1/databases} is in its backups: a restore
 * brings it back with its rows (backups are of the whole server, not of the tenant's one database).
 */
class TestBrokerDatabasesBackedUp {
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private HttpResponse<String> broker(JsonNode db, String method, String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(db.get("broker_url").asText() + path))
                .timeout(Duration.ofMinutes(2))
                .header("Authorization", "Bearer " + db.get("broker_token").asText())
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void aRestoreBringsBackTheDatabasesMadeInside() throws Exception {
        try (TestingPalisade palisade = TestingPalisade.requiring("process",
                Map.of("backup.flush-interval", "200ms", "agent.reconcile-interval", "1s"))) {
            TestingPalisade.Response created = palisade.post("/v1/databases",
                    "{\"label\":\"made-inside\",\"isolation\":\"process\"}");
            assertThat(created.status()).as(created.body()).isEqualTo(201);
            JsonNode db = created.json();
            String id = db.get("id").asText();
            assertThat(broker(db, "POST", "/v1/databases", "{\"name\":\"analytics\"}").statusCode()).isEqualTo(201);
            HttpResponse<String> filled = broker(db, "POST", "/v1/exec", "{\"database\":\"analytics\",\"sql\":"
                    + "\"CREATE TABLE facts (n int); INSERT INTO facts SELECT generate_series(1, 42)\"}");
            assertThat(filled.statusCode()).as(filled.body()).isEqualTo(200);
            BackupChecks.awaitWindowCovering(palisade, id, Instant.now());

            TestingPalisade.Response restored = palisade.post("/v1/databases",
                    "{\"label\":\"made-inside-restored\",\"restore\":{\"from\":\"" + id + "\",\"latest\":true}}");
            assertThat(restored.status()).as(restored.body()).isEqualTo(201);
            HttpResponse<String> count = broker(restored.json(), "POST", "/v1/query", "{\"database\":\"analytics\","
                    + "\"sql\":\"SELECT count(*) AS n FROM facts\"}");
            System.out.printf("review backup: %d %s%n", count.statusCode(), count.body());
            assertThat(count.statusCode()).as(count.body()).isEqualTo(200);
            assertThat(count.body()).contains("\"rows\":[[42]]");
        }
    }
}
