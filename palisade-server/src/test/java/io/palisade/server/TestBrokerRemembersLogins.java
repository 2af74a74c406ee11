package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The broker remembers logins that passed and where running databases listen for a few seconds (issue 15: no store
 * query per request); these tests check that nothing remembered outlives a change, on a live palisade on the process
 * rung: after a rotation the old broker token and password are refused at once, a deleted database at once, another
 * account's key never verifies however often the owner's token did, and a restart is followed at once.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestBrokerRemembersLogins {
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = TestingPalisade.requiring("process", Map.of());
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.server().store().list("acct-admin").forEach(r -> palisade.delete("/v1/databases/" + r.id()));
            palisade.close();
        }
    }

    private JsonNode create(String label) {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"" + label + "\",\"isolation\":\"process\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        return created.json();
    }

    /** PandaStack's {@code v1/query} under the database's broker URL with {@code token}; the status. */
    private int panda(JsonNode db, String token) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(
                        URI.create(db.get("broker_url").asText() + "/v1/query"))
                .timeout(Duration.ofMinutes(1))
                .header("Authorization", "Bearer " + token)
                .POST(HttpRequest.BodyPublishers.ofString("{\"database\":\"pandastack\",\"sql\":\"SELECT 1\"}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() == 200) {
            assertThat(response.body()).contains("\"rows\":[[1]]");
        }
        return response.statusCode();
    }

    /** Neon's {@code POST /sql} logged in with {@code password}; the status. */
    private int neon(JsonNode db, String password) throws Exception {
        String connection = "postgres://" + db.get("username").asText() + ":"
                + URLEncoder.encode(password, StandardCharsets.UTF_8) + "@" + db.get("id").asText()
                + ".db.localhost/" + db.get("database").asText();
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(palisade.apiUrl() + "/sql"))
                .timeout(Duration.ofMinutes(1))
                .header("Neon-Connection-String", connection)
                .POST(HttpRequest.BodyPublishers.ofString("{\"query\":\"SELECT 1 AS one\",\"params\":[]}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() == 200) {
            assertThat(response.body()).contains("\"one\":1");
        }
        return response.statusCode();
    }

    @Test
    void rotationRefusesTheOldTokenAndPasswordAtOnce() throws Exception {
        JsonNode db = create("remember-rotate");
        String id = db.get("id").asText();
        String token = db.get("broker_token").asText();
        String password = db.get("password").asText();
        for (int i = 0; i < 3; i++) { // the second and third pass from memory
            assertThat(panda(db, token)).isEqualTo(200);
            assertThat(neon(db, password)).isEqualTo(200);
        }

        TestingPalisade.Response rotated = palisade.post("/v1/databases/" + id + "/credentials/rotate", null);
        assertThat(rotated.status()).as(rotated.body()).isEqualTo(200);

        assertThat(panda(db, token)).as("the old broker token right after the rotation").isEqualTo(401);
        assertThat(neon(db, password)).as("the old password right after the rotation").isEqualTo(400);
        assertThat(panda(db, rotated.json().get("broker_token").asText())).isEqualTo(200);
        assertThat(neon(db, rotated.json().get("password").asText())).isEqualTo(200);
        // and a refusal is never remembered as a pass
        assertThat(panda(db, token)).isEqualTo(401);
        assertThat(neon(db, password)).isEqualTo(400);
    }

    @Test
    void anotherAccountsKeyNeverVerifies() throws Exception {
        JsonNode db = create("remember-accounts");
        String otherKey = palisade.newAccount("remember-other");
        for (int i = 0; i < 3; i++) {
            assertThat(panda(db, db.get("broker_token").asText())).isEqualTo(200);
            assertThat(panda(db, palisade.adminKey())).as("the owning account's key").isEqualTo(200);
            assertThat(panda(db, otherKey)).as("another account's key").isEqualTo(401);
            assertThat(panda(db, db.get("broker_token").asText() + "x")).isEqualTo(401);
        }
    }

    @Test
    void aDeletedDatabaseIsRefusedAtOnce() throws Exception {
        JsonNode db = create("remember-delete");
        String token = db.get("broker_token").asText();
        String password = db.get("password").asText();
        assertThat(panda(db, token)).isEqualTo(200);
        assertThat(panda(db, palisade.adminKey())).isEqualTo(200);
        assertThat(neon(db, password)).isEqualTo(200);

        assertThat(palisade.delete("/v1/databases/" + db.get("id").asText()).status()).isEqualTo(204);

        assertThat(panda(db, token)).isEqualTo(401);
        assertThat(panda(db, palisade.adminKey())).isEqualTo(401);
        assertThat(neon(db, password)).isEqualTo(400);
    }

    @Test
    void aRestartIsFollowedAtOnce() throws Exception {
        JsonNode db = create("remember-restart");
        String token = db.get("broker_token").asText();
        assertThat(panda(db, token)).isEqualTo(200);
        assertThat(neon(db, db.get("password").asText())).isEqualTo(200);
        for (int i = 0; i < 2; i++) {
            TestingPalisade.Response restarted = palisade.post("/v1/databases/" + db.get("id").asText() + "/restart",
                    null);
            assertThat(restarted.status()).as(restarted.body()).isEqualTo(200);
            assertThat(panda(db, token)).as("right after restart " + (i + 1)).isEqualTo(200);
            assertThat(neon(db, db.get("password").asText())).as("right after restart " + (i + 1)).isEqualTo(200);
        }
    }
}
