package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.testing.TestingS3;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Broken archiving is seen, not discovered at restore time: when the object store goes away, the database's backups
 * listing, {@code /v1/health} and {@code /metrics} say so within a minute.
 */
class TestArchiveHealth {
    @Test
    void brokenArchivingIsVisibleWithinAMinute() throws Exception {
        TestingS3 s3 = new TestingS3();
        TestingS3.Settings settings = s3.settings();
        boolean s3Closed = false;
        try (TestingPalisade palisade = new TestingPalisade(Map.of(
                "backup.storage", "s3",
                "backup.s3.endpoint", settings.endpoint().toString(),
                "backup.s3.bucket", settings.bucket(),
                "backup.s3.access-key-id", settings.accessKeyId(),
                "backup.s3.secret-access-key", settings.secretAccessKey(),
                "agent.reconcile-interval", "1s"))) {
            TestingPalisade.Response created = palisade.post("/v1/databases",
                    "{\"label\":\"health\",\"isolation\":\"process\"}");
            assertThat(created.status()).as(created.body()).isEqualTo(201);
            String id = created.json().get("id").asText();
            BackupChecks.awaitWindowCovering(palisade, id, Instant.now());
            assertThat(palisade.get("/v1/health").json().get("backups").get("status").asText()).isEqualTo("ok");

            s3.close(); // the archive's store is gone
            s3Closed = true;
            Instant broken = Instant.now();
            BackupChecks.execute(created.json().get("connection_url").asText(),
                    "create table after_outage as select g from generate_series(1, 10000) g");
            await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofSeconds(1)).untilAsserted(() -> {
                JsonNode archive = palisade.get("/v1/databases/" + id + "/backups").json().get("archive");
                assertThat(archive.get("healthy").asBoolean()).as(archive.toString()).isFalse();
                assertThat(archive.get("last_error").asText()).isNotEmpty();
                JsonNode health = palisade.get("/v1/health").json().get("backups");
                assertThat(health.get("status").asText()).isEqualTo("degraded");
                assertThat(health.get("unhealthy").asLong()).isGreaterThanOrEqualTo(1);
                assertThat(health.toString()).doesNotContain(id); // health needs no key: no ids
                TestingPalisade.Response metrics = palisade.get("/metrics");
                assertThat(metrics.body()).containsPattern("palisade_archive_unhealthy(\\{[^}]*})? [1-9]");
            });
            System.out.printf("archive outage visible after %d ms%n",
                    Duration.between(broken, Instant.now()).toMillis());
        } finally {
            if (!s3Closed) {
                s3.close();
            }
        }
    }
}
