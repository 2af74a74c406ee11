package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code broker.*} keys reach the broker a running palisade serves on its API port. */
class TestBrokerSettings {
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @Test
    void rowAndRequestLimitsComeFromTheConfiguration() throws Exception {
        try (TestingPalisade palisade = new TestingPalisade(Map.of(
                "broker.max-rows", "3",
                "broker.max-request-bytes", "2KiB",
                "broker.statement-timeout", "1s"))) {
            TestingPalisade.Response created = palisade.post("/v1/databases", "{\"isolation\":\"process\"}");
            assertThat(created.status()).as(created.body()).isEqualTo(201);
            JsonNode db = created.json();
            String connectionUrl = db.get("connection_url").asText();
            // the libpq TLS parameters are for drivers; the broker takes the URL without them
            String url = connectionUrl.contains("?") ? connectionUrl.substring(0, connectionUrl.indexOf('?'))
                    : connectionUrl;
            try {
                HttpResponse<String> three = sql(palisade, url, "select generate_series(1, 3) as n", "");
                assertThat(three.statusCode()).as(three.body()).isEqualTo(200);
                assertThat(three.body()).contains("\"rowCount\":3");

                HttpResponse<String> four = sql(palisade, url, "select generate_series(1, 4) as n", "");
                assertThat(four.statusCode()).as(four.body()).isEqualTo(507);
                assertThat(four.body()).contains("max is 3 rows");

                HttpResponse<String> big = sql(palisade, url, "select 1", "x".repeat(3000));
                assertThat(big.statusCode()).as(big.body()).isEqualTo(413);
                assertThat(big.body()).contains("max is 2048 bytes");

                HttpResponse<String> slow = sql(palisade, url, "select pg_sleep(5)", "");
                assertThat(slow.statusCode()).as(slow.body()).isEqualTo(400);
                assertThat(slow.body()).contains("57014");
            } finally {
                palisade.delete("/v1/databases/" + db.get("id").asText());
            }
        }
    }

    private HttpResponse<String> sql(TestingPalisade palisade, String url, String query, String padding)
            throws Exception {
        String body = "{\"query\":\"" + query + (padding.isEmpty() ? "" : " -- " + padding) + "\",\"params\":[]}";
        return http.send(HttpRequest.newBuilder(URI.create(palisade.apiUrl() + "/sql"))
                        .timeout(Duration.ofSeconds(60))
                        .header("Neon-Connection-String", url)
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
