package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.backup.ArchiveLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Retention with a short window: the pruner deletes base backups and WAL outside the window, keeps what the window's
 * earliest moment needs, and a restore to that earliest moment works and holds exactly the rows committed before it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestBackupRetention {
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = new TestingPalisade(Map.of("backup.retention", "12s", "backup.base-interval", "4s",
                "backup.flush-interval", "200ms", "agent.reconcile-interval", "1s"));
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.close();
        }
    }

    @Test
    void prunesOutsideTheWindowAndTheEarliestMomentStillRestores() throws Exception {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"retention\",\"isolation\":\"process\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        String id = created.json().get("id").asText();
        String url = created.json().get("connection_url").asText();
        BackupChecks.execute(url, "create table ticks (n int primary key, at timestamptz not null default clock_timestamp())");
        BackupChecks.awaitFirstBackup(palisade, id);
        String firstBackup = backups(id).get(0).get("id").asText();

        // write a row every 100 ms until the first base backup has been pruned
        Set<Integer> written = new HashSet<>();
        try (Connection c = PgUrls.connect(url);
                PreparedStatement insert = c.prepareStatement("insert into ticks (n) values (?)")) {
            int n = 0;
            long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
            while (backups(id).get(0).get("id").asText().equals(firstBackup)) {
                assertThat(System.nanoTime()).as("the first base backup is never pruned").isLessThan(deadline);
                insert.setInt(1, ++n);
                insert.executeUpdate();
                written.add(n);
                Thread.sleep(100);
            }
        }
        JsonNode listing = palisade.get("/v1/databases/" + id + "/backups").json();
        Instant earliest = Instant.parse(listing.get("window").get("earliest").asText());
        assertThat(earliest).isBefore(Instant.now().minusSeconds(12));

        // no WAL chunk before the anchor backup's start remains
        String archive = listing.get("archive").get("archive_id").asText();
        long anchorStart = io.palisade.pgwire.Lsn.parse(listing.get("backups").get(0).get("start_lsn").asText()).value();
        Path walDir = palisade.dataDir().resolve("backups").resolve(ArchiveLayout.walPrefix(archive));
        try (Stream<Path> files = Files.walk(walDir)) {
            assertThat(files.filter(Files::isRegularFile)
                    .map(p -> ArchiveLayout.parseWalChunk(ArchiveLayout.walPrefix(archive) + walDir.relativize(p)))
                    .flatMap(java.util.Optional::stream)
                    .filter(chunk -> Long.compareUnsigned(chunk.end().value(),
                            ArchiveLayout.segmentStart(anchorStart)) <= 0)
                    .toList()).isEmpty();
        }

        // the window's earliest moment restores: the rows committed by then, none after
        TestingPalisade.Response restored = palisade.post("/v1/databases",
                "{\"label\":\"retention-earliest\",\"restore\":{\"from\":\"" + id + "\",\"target_time\":\"" + earliest
                        + "\"}}");
        assertThat(restored.status()).as(restored.body()).isEqualTo(201);
        String restoredUrl = restored.json().get("connection_url").asText();
        // commit times trail the rows' clock_timestamp() by a few milliseconds: allow 50 ms either way
        long restoredRows = BackupChecks.count(restoredUrl, "ticks", "true");
        assertThat(restoredRows).isBetween(
                BackupChecks.count(url, "ticks", "at <= '" + earliest.minusMillis(50) + "'"),
                BackupChecks.count(url, "ticks", "at <= '" + earliest.plusMillis(50) + "'"));
        assertThat(BackupChecks.count(restoredUrl, "ticks", "at > '" + earliest.plusMillis(50) + "'")).isZero();
        assertThat(written).hasSizeGreaterThan(10);
    }

    private JsonNode backups(String id) {
        return palisade.get("/v1/databases/" + id + "/backups").json().get("backups");
    }
}
