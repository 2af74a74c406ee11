package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Processes;
import io.palisade.testing.TestingS3;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Disk loss with archives in a real S3-compatible server: a writer commits continuously (synchronous commit), then the
 * instance and its data directory are destroyed behind palisade's back; a restore of {@code latest} to a new database
 * holds every commit acknowledged more than a second before the loss (async) and every acknowledged commit
 * ({@code durability: sync}). Deleting the databases leaves nothing in the bucket.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestBackupDurability {
    private TestingS3 s3;
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        s3 = new TestingS3();
        TestingS3.Settings settings = s3.settings();
        palisade = new TestingPalisade(Map.of(
                "backup.storage", "s3",
                "backup.s3.endpoint", settings.endpoint().toString(),
                "backup.s3.bucket", settings.bucket(),
                "backup.s3.access-key-id", settings.accessKeyId(),
                "backup.s3.secret-access-key", settings.secretAccessKey(),
                "backup.flush-interval", "200ms",
                "agent.reconcile-interval", "1s"));
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.close();
        }
        if (s3 != null) {
            s3.close();
        }
    }

    @Test
    void asyncLosesNothingOlderThanOneSecond() throws Exception {
        DiskLoss.Result result = DiskLoss.run(palisade, "{\"label\":\"loss-async\",\"isolation\":\"process\"}", "process",
                Duration.ofSeconds(3), this::destroyProcessInstance);
        System.out.println(result.describe("process, async"));
        assertThat(result.missingOld()).isZero();
        assertThat(result.olderThanOneSecond()).isGreaterThan(10);
        assertNothingLeftAfterDelete(result);
    }

    @Test
    void syncLosesNothing() throws Exception {
        DiskLoss.Result result = DiskLoss.run(palisade,
                "{\"label\":\"loss-sync\",\"isolation\":\"process\",\"durability\":\"sync\"}", "process",
                Duration.ofSeconds(3),
                this::destroyProcessInstance);
        System.out.println(result.describe("process, sync"));
        assertThat(result.missingAll()).isZero();
        assertThat(result.acknowledged()).isGreaterThan(10);
        assertNothingLeftAfterDelete(result);
    }

    /** The loss: postmaster killed and its data directory gone, behind palisade's back. */
    private void destroyProcessInstance(String id) {
        Path instance = palisade.dataDir().resolve("instances/process").resolve(id);
        try {
            long pid = Long.parseLong(Files.readAllLines(instance.resolve("data/postmaster.pid")).getFirst().strip());
            Processes.run(List.of("kill", "-9", Long.toString(pid)), Duration.ofSeconds(5), null);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        Processes.run(List.of("rm", "-rf", instance.resolve("data").toString()), Duration.ofSeconds(30), null);
    }

    /** Deleting both leaves nothing of the source or the restore in the bucket. */
    private void assertNothingLeftAfterDelete(DiskLoss.Result result) throws Exception {
        String archive = palisade.get("/v1/databases/" + result.restoredId() + "/backups").json().get("archive")
                .get("archive_id").asText();
        assertThat(palisade.delete("/v1/databases/" + result.sourceId()).status()).isEqualTo(204);
        assertThat(palisade.delete("/v1/databases/" + result.restoredId()).status()).isEqualTo(204);
        try (Stream<Path> files = Files.walk(s3.bucketDir(s3.settings().bucket()))) {
            assertThat(files.filter(Files::isRegularFile).map(Path::toString)
                    .filter(p -> p.contains(archive) || p.contains(result.sourceId())).toList()).isEmpty();
        }
        assertThat(palisade.get("/v1/databases").json().get("databases").toString()).doesNotContain(result.sourceId());
    }
}
