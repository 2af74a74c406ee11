package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.host.Processes;
import io.palisade.testing.TestingS3;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicBoolean;
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
        Result result = loseDisk("{\"label\":\"loss-async\",\"isolation\":\"process\"}");
        System.out.printf("disk loss (async): %d acknowledged, %d acknowledged > 1 s before the loss, %d restored,"
                + " %d of those older ones missing%n", result.acknowledged, result.olderThanOneSecond, result.restored,
                result.missingOld);
        assertThat(result.missingOld).isZero();
        assertThat(result.olderThanOneSecond).isGreaterThan(10);
    }

    @Test
    void syncLosesNothing() throws Exception {
        Result result = loseDisk("{\"label\":\"loss-sync\",\"isolation\":\"process\",\"durability\":\"sync\"}");
        System.out.printf("disk loss (sync): %d acknowledged, %d restored, %d acknowledged missing%n",
                result.acknowledged, result.restored, result.missingAll);
        assertThat(result.missingAll).isZero();
        assertThat(result.acknowledged).isGreaterThan(10);
    }

    record Result(long acknowledged, long olderThanOneSecond, long restored, long missingOld, long missingAll) {}

    private Result loseDisk(String body) throws Exception {
        TestingPalisade.Response created = palisade.post("/v1/databases", body);
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        String id = created.json().get("id").asText();
        String url = created.json().get("connection_url").asText();
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement()) {
            s.execute("create table commits (n bigint primary key, at timestamptz not null default now())");
        }
        await().atMost(Duration.ofSeconds(90)).until(() ->
                !palisade.get("/v1/databases/" + id + "/backups").json().get("window").get("earliest").asText().isEmpty());

        // acknowledged commit number → when the acknowledgement arrived
        ConcurrentSkipListMap<Long, Instant> acknowledged = new ConcurrentSkipListMap<>();
        AtomicBoolean stop = new AtomicBoolean();
        Thread writer = Thread.ofPlatform().name("loss-writer").start(() -> {
            try (Connection c = PgUrls.connect(url);
                    PreparedStatement insert = c.prepareStatement("insert into commits (n) values (?)")) {
                for (long n = 1; !stop.get() && n < 100_000; n++) {
                    insert.setLong(1, n);
                    insert.executeUpdate();
                    acknowledged.put(n, Instant.now());
                    Thread.sleep(5);
                }
            } catch (SQLException | InterruptedException e) {
                // the loss: the connection dies
            }
        });
        Thread.sleep(3000);
        // the loss: postmaster killed and its data directory gone, behind palisade's back
        Path instance = palisade.dataDir().resolve("instances/process").resolve(id);
        long pid = Long.parseLong(Files.readAllLines(instance.resolve("data/postmaster.pid")).getFirst().strip());
        Instant lostAt = Instant.now();
        Processes.run(List.of("kill", "-9", Long.toString(pid)), Duration.ofSeconds(5), null);
        Processes.run(List.of("rm", "-rf", instance.resolve("data").toString()), Duration.ofSeconds(30), null);
        stop.set(true);
        writer.join(Duration.ofSeconds(30));

        TestingPalisade.Response restored = palisade.post("/v1/databases",
                "{\"label\":\"loss-restored\",\"restore\":{\"from\":\"" + id + "\",\"latest\":true}}");
        assertThat(restored.status()).as(restored.body()).isEqualTo(201);
        java.util.Set<Long> present = new java.util.HashSet<>();
        try (Connection c = PgUrls.connect(restored.json().get("connection_url").asText()); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("select n from commits")) {
            while (rs.next()) {
                present.add(rs.getLong(1));
            }
        }
        long older = acknowledged.entrySet().stream().filter(e -> e.getValue().isBefore(lostAt.minusSeconds(1))).count();
        long missingOld = acknowledged.entrySet().stream()
                .filter(e -> e.getValue().isBefore(lostAt.minusSeconds(1)) && !present.contains(e.getKey())).count();
        long missingAll = acknowledged.keySet().stream().filter(n -> !present.contains(n)).count();

        // delete both: nothing of the source or the restore remains in the bucket
        String restoredId = restored.json().get("id").asText();
        String archive = palisade.get("/v1/databases/" + restoredId + "/backups").json().get("archive").get("archive_id")
                .asText();
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
        assertThat(palisade.delete("/v1/databases/" + restoredId).status()).isEqualTo(204);
        try (Stream<Path> files = Files.walk(s3.bucketDir(s3.settings().bucket()))) {
            assertThat(files.filter(Files::isRegularFile).map(Path::toString)
                    .filter(p -> p.contains(archive) || p.contains(id)).toList()).isEmpty();
        }
        JsonNode list = palisade.get("/v1/databases").json();
        assertThat(list.get("databases").toString()).doesNotContain(id);
        return new Result(acknowledged.size(), older, present.size(), missingOld, missingAll);
    }
}
