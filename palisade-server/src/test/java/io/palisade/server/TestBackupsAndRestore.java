package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Backups, point-in-time restore and fork on the process rung against a full palisade (local archive): restore to a
 * time as a new database and in place, fork isolation, the tenant schema corpus reproduced exactly, a corrupt WAL chunk
 * named in the error, bad input, and delete leaving nothing in the archive.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestBackupsAndRestore {
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = new TestingPalisade(Map.of("backup.flush-interval", "200ms", "agent.reconcile-interval", "1s"));
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.close();
        }
    }

    @Test
    void restoreToTimeAsNewAndInPlaceAndFork() throws Exception {
        JsonNode source = create("pitr-source");
        String id = source.get("id").asText();
        String url = source.get("connection_url").asText();
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement()) {
            s.execute(BackupChecks.corpus());
            s.execute("create table pitr_events (n int primary key, phase text not null)");
            s.execute("insert into pitr_events select g, 'before' from generate_series(1, 100) g");
        }
        String structureBefore = BackupChecks.structure(url);
        BackupChecks.awaitWindowCovering(palisade, id, Instant.now());
        Thread.sleep(1100);
        Instant t = Instant.now();
        Thread.sleep(1100);
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement()) {
            s.execute("insert into pitr_events select g, 'after' from generate_series(101, 150) g");
        }
        BackupChecks.awaitWindowCovering(palisade, id, Instant.now());

        // restore as a new database to T: the rows before T, none after; the source keeps running
        TestingPalisade.Response restored = palisade.post("/v1/databases",
                "{\"label\":\"pitr-new\",\"restore\":{\"from\":\"" + id + "\",\"target_time\":\"" + t + "\"}}");
        assertThat(restored.status()).as(restored.body()).isEqualTo(201);
        String restoredUrl = restored.json().get("connection_url").asText();
        assertThat(restored.json().get("id").asText()).isNotEqualTo(id);
        assertThat(BackupChecks.count(restoredUrl, "pitr_events", "phase = 'before'")).isEqualTo(100);
        assertThat(BackupChecks.count(restoredUrl, "pitr_events", "phase = 'after'")).isZero();
        assertThat(BackupChecks.structure(restoredUrl)).isEqualTo(structureBefore);
        assertThat(BackupChecks.count(url, "pitr_events", "true")).isEqualTo(150);
        JsonNode operations = palisade.get("/v1/databases/" + restored.json().get("id").asText() + "/operations").json();
        assertThat(operations.get("operations").get(0).get("state").asText()).isEqualTo("succeeded");
        assertThat(operations.get("operations").get(0).get("source_id").asText()).isEqualTo(id);

        // fork of the current state: same data, then the two diverge
        TestingPalisade.Response fork = palisade.post("/v1/databases/" + id + "/fork", "{\"label\":\"pitr-fork\"}");
        assertThat(fork.status()).as(fork.body()).isEqualTo(201);
        String forkUrl = fork.json().get("connection_url").asText();
        assertThat(BackupChecks.count(forkUrl, "pitr_events", "true")).isEqualTo(150);
        assertThat(BackupChecks.structure(forkUrl)).isEqualTo(structureBefore);
        BackupChecks.execute(forkUrl, "insert into pitr_events values (1000, 'fork')");
        BackupChecks.execute(url, "insert into pitr_events values (2000, 'source')");
        assertThat(BackupChecks.count(url, "pitr_events", "n = 1000")).isZero();
        assertThat(BackupChecks.count(forkUrl, "pitr_events", "n = 2000")).isZero();
        BackupChecks.awaitWindowCovering(palisade, id, Instant.now());

        // in place to T: same id and URL; the state before the restore lives on as a new database
        TestingPalisade.Response inPlace = palisade.post("/v1/databases/" + id + "/restore",
                "{\"target_time\":\"" + t + "\"}");
        assertThat(inPlace.status()).as(inPlace.body()).isEqualTo(200);
        assertThat(inPlace.json().get("id").asText()).isEqualTo(id);
        assertThat(BackupChecks.count(url, "pitr_events", "true")).isEqualTo(100);
        String preRestoreUrl = inPlace.json().get("pre_restore_database").get("connection_url").asText();
        assertThat(BackupChecks.count(preRestoreUrl, "pitr_events", "phase = 'after'")).isEqualTo(50);
        assertThat(BackupChecks.count(preRestoreUrl, "pitr_events", "n = 2000")).isEqualTo(1);
        // the restored database archives again, into a new lineage
        await().atMost(Duration.ofSeconds(60)).until(() ->
                !palisade.get("/v1/databases/" + id + "/backups").json().get("window").get("earliest").asText().isEmpty());
    }

    @Test
    void corruptWalIsNamedAndBadInputIsRefused() throws Exception {
        JsonNode source = create("corrupt-source");
        String id = source.get("id").asText();
        BackupChecks.execute(source.get("connection_url").asText(),
                "create table t as select g from generate_series(1, 1000) g");
        BackupChecks.awaitWindowCovering(palisade, id, Instant.now());

        TestingPalisade.Response future = palisade.post("/v1/databases",
                "{\"restore\":{\"from\":\"" + id + "\",\"target_time\":\"" + Instant.now().plusSeconds(3600) + "\"}}");
        assertThat(future.status()).isEqualTo(400);
        assertThat(future.contentType()).startsWith("application/problem+json");
        assertThat(future.json().get("detail").asText()).contains("in the future");
        TestingPalisade.Response tooEarly = palisade.post("/v1/databases",
                "{\"restore\":{\"from\":\"" + id + "\",\"target_time\":\"2020-01-01T00:00:00Z\"}}");
        assertThat(tooEarly.status()).isEqualTo(400);
        assertThat(tooEarly.json().get("detail").asText()).contains("outside the restorable window");
        String otherKey = palisade.newAccount("intruder");
        TestingPalisade.Response foreign = palisade.request("POST", "/v1/databases",
                "{\"restore\":{\"from\":\"" + id + "\"}}", otherKey);
        assertThat(foreign.status()).isEqualTo(404);
        assertThat(foreign.json().get("detail").asText()).isEqualTo(palisade.request("POST", "/v1/databases",
                "{\"restore\":{\"from\":\"db-doesnotexist\"}}", otherKey).json().get("detail").asText()
                .replace("db-doesnotexist", id));
        TestingPalisade.Response badTime = palisade.post("/v1/databases/" + id + "/restore",
                "{\"target_time\":\"yesterday\"}");
        assertThat(badTime.status()).isEqualTo(400);
        assertThat(badTime.json().get("detail").asText()).contains("RFC 3339");

        // a database being deleted cannot be forked or restored from
        JsonNode doomed = create("doomed");
        palisade.server().store().transition(doomed.get("id").asText(), io.palisade.store.DatabaseState.DELETING, null);
        TestingPalisade.Response forkDeleting = palisade.post("/v1/databases/" + doomed.get("id").asText() + "/fork", "{}");
        assertThat(forkDeleting.status()).isEqualTo(409);
        assertThat(forkDeleting.json().get("detail").asText()).contains("being deleted");

        // flip one byte in the newest WAL chunk: the restore fails and names it; nothing half-made remains
        Path walDir = palisade.dataDir().resolve("backups/archives");
        Path chunk;
        try (Stream<Path> files = Files.walk(walDir)) {
            chunk = files.filter(p -> p.toString().contains("/wal/") && Files.isRegularFile(p))
                    .filter(p -> p.toString().contains(archiveOf(id)))
                    .max(Path::compareTo).orElseThrow();
        }
        byte[] bytes = Files.readAllBytes(chunk);
        bytes[bytes.length / 2] ^= 0x5a;
        Files.write(chunk, bytes);
        int before = palisade.get("/v1/databases").json().get("databases").size();
        TestingPalisade.Response corrupt = palisade.post("/v1/databases",
                "{\"restore\":{\"from\":\"" + id + "\",\"latest\":true}}");
        assertThat(corrupt.status()).as(corrupt.body()).isGreaterThanOrEqualTo(400);
        assertThat(corrupt.json().get("detail").asText()).contains(chunk.getFileName().toString()).contains("corrupt");
        assertThat(palisade.get("/v1/databases").json().get("databases").size()).isEqualTo(before);

        // delete: nothing of the database remains in the archive
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
        if (Files.exists(walDir)) {
            try (Stream<Path> files = Files.walk(walDir)) {
                assertThat(files.filter(p -> p.toString().contains(archiveOf(id))).toList()).isEmpty();
            }
        }
    }

    @Test
    void deletedWithKeptBackupsStillRestores() throws Exception {
        JsonNode source = create("kept");
        String id = source.get("id").asText();
        BackupChecks.execute(source.get("connection_url").asText(),
                "create table kept_rows as select g as n from generate_series(1, 42) g");
        BackupChecks.awaitWindowCovering(palisade, id, Instant.now());
        TestingPalisade.Response badKeep = palisade.delete("/v1/databases/" + id + "?keep_backups_days=0");
        assertThat(badKeep.status()).isEqualTo(400);
        assertThat(palisade.delete("/v1/databases/" + id + "?keep_backups_days=1").status()).isEqualTo(204);
        assertThat(palisade.get("/v1/databases/" + id).status()).isEqualTo(404);

        String otherKey = palisade.newAccount("kept-intruder");
        TestingPalisade.Response foreign = palisade.request("POST", "/v1/databases",
                "{\"restore\":{\"from\":\"" + id + "\"}}", otherKey);
        assertThat(foreign.status()).isEqualTo(404);
        TestingPalisade.Response restored = palisade.post("/v1/databases",
                "{\"isolation\":\"process\",\"restore\":{\"from\":\"" + id + "\",\"latest\":true}}");
        assertThat(restored.status()).as(restored.body()).isEqualTo(201);
        assertThat(BackupChecks.count(restored.json().get("connection_url").asText(), "kept_rows", "true"))
                .isEqualTo(42);
    }

    private final Map<String, String> archives = new java.util.concurrent.ConcurrentHashMap<>();

    private String archiveOf(String id) {
        return archives.computeIfAbsent(id, ignored ->
                palisade.get("/v1/databases/" + id + "/backups").json().get("archive").get("archive_id").asText());
    }

    /**
     * Under {@code durability: sync} the source's server waits for its archiver on every commit; the copy an in-place
     * restore keeps of the state before it starts from the same settings with no archiver streaming for it yet, and
     * palisade's password change on it must not wait for one (it once hung there for good).
     */
    @Test
    void syncDurabilityRestoresInPlace() throws Exception {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"sync-in-place\",\"isolation\":\"process\",\"durability\":\"sync\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        String id = created.json().get("id").asText();
        String url = created.json().get("connection_url").asText();
        BackupChecks.execute(url, "create table kept (n int primary key); insert into kept values (1)");
        BackupChecks.awaitWindowCovering(palisade, id, Instant.now());

        TestingPalisade.Response inPlace = palisade.post("/v1/databases/" + id + "/restore", "{\"latest\":true}");
        assertThat(inPlace.status()).as(inPlace.body()).isEqualTo(200);
        assertThat(BackupChecks.count(url, "kept", "n = 1")).isEqualTo(1);
        String preRestoreUrl = inPlace.json().get("pre_restore_database").get("connection_url").asText();
        assertThat(BackupChecks.count(preRestoreUrl, "kept", "n = 1")).isEqualTo(1);
        // both still take commits (the restored database under sync, once its archiver streams again)
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            BackupChecks.execute(url, "insert into kept values (2)");
            BackupChecks.execute(preRestoreUrl, "insert into kept values (2)");
        });
    }

    private JsonNode create(String label) {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"" + label + "\",\"isolation\":\"process\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        return created.json();
    }
}
