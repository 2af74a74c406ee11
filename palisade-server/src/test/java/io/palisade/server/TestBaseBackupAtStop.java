package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A base backup in flight when its database stops is cancelled with why (its connection aborted, so that a suspended
 * guest that answers nothing cannot hold the host's base backup slot), is not counted as a failure (no back-off), and
 * the next start takes a new one at once. The backups here are throttled to 32 kB/s so that one is always in flight.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestBaseBackupAtStop {
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = new TestingPalisade(Map.of("backup.max-rate", "32", "backup.start-delay", "500ms"));
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.close();
        }
    }

    @Test
    void aRestartCancelsTheBackupInFlightAndTheNextStartTakesANewOne() {
        JsonNode created = palisade.post("/v1/databases", "{\"label\":\"backup-at-stop\",\"isolation\":\"process\"}")
                .json();
        String id = created.get("id").asText();
        try {
            String first = awaitRunningBackup(id, List.of());

            TestingPalisade.Response restarted = palisade.post("/v1/databases/" + id + "/restart", null);
            assertThat(restarted.status()).as(restarted.body()).isEqualTo(200);

            JsonNode cancelled = backup(id, first);
            assertThat(cancelled.get("state").asText()).isEqualTo("failed");
            assertThat(cancelled.get("error").asText()).contains("was cancelled: archiving of its database stopped");
            // not a failure of the database's backups: no back-off, the restart's start takes a new one at once
            String second = awaitRunningBackup(id, List.of(first));
            assertThat(second).isNotEqualTo(first);
            JsonNode archive = palisade.get("/v1/databases/" + id + "/backups").json().get("archive");
            assertThat(archive.get("streaming").asBoolean()).as(archive.toString()).isTrue();
        } finally {
            TestingPalisade.Response deleted = palisade.delete("/v1/databases/" + id);
            assertThat(deleted.status()).as(deleted.body()).isIn(200, 202, 204);
        }
    }

    /** The id of a running base backup of {@code id} other than {@code seen}, once there is one. */
    private String awaitRunningBackup(String id, List<String> seen) {
        List<String> found = new ArrayList<>();
        await("a running base backup of " + id).atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(100))
                .until(() -> {
                    for (JsonNode backup : palisade.get("/v1/databases/" + id + "/backups").json().get("backups")) {
                        String backupId = backup.get("id").asText();
                        if (backup.get("state").asText().equals("running") && !seen.contains(backupId)) {
                            found.add(backupId);
                            return true;
                        }
                    }
                    return false;
                });
        return found.getFirst();
    }

    private JsonNode backup(String id, String backupId) {
        for (JsonNode backup : palisade.get("/v1/databases/" + id + "/backups").json().get("backups")) {
            if (backup.get("id").asText().equals(backupId)) {
                return backup;
            }
        }
        throw new AssertionError("no base backup " + backupId + " of " + id);
    }
}
