package io.palisade.server;

import static io.palisade.server.TestControlPlaneCrash.instanceDirs;
import static io.palisade.server.TestControlPlaneCrash.list;
import static io.palisade.server.TestControlPlaneCrash.postgresProcessesUnder;
import static io.palisade.server.TestControlPlaneCrash.request;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.host.Processes;
import io.palisade.testing.TestingDirectories;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * SIGKILL of {@code palisade serve} during a base backup, a restore as a new database, a fork and an in-place restore:
 * after a restart nothing half-made claims to be usable (no base backup left running, every database running with all
 * its rows or failed with a reason), the source never loses a row, and deleting everything leaves nothing behind.
 */
class TestBackupCrash {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final int ROWS = 20_000;

    @Test
    void nothingHalfMadeAfterSigkillDuringBackupRestoreAndFork() throws Exception {
        Path work = TestingDirectories.newWorkDir("backup-crash");
        Path dataDir = work.resolve("data");
        String key = "pk_backup_crash_key_0123456789";
        HttpClient http = HttpClient.newHttpClient();
        // the calls to interrupt (method, path, body; %s: the source's id), each at two delays
        List<String[]> interruptions = List.of(
                new String[] {"POST", "/v1/databases/%s/backups", "{}"},
                new String[] {"POST", "/v1/databases", "{\"label\":\"crash-restore\",\"restore\":{\"from\":\"%s\","
                        + "\"latest\":true}}"},
                new String[] {"POST", "/v1/databases/%s/fork", "{\"label\":\"crash-fork\"}"},
                new String[] {"POST", "/v1/databases/%s/restore", "{\"latest\":true}"});
        int[] delaysMs = {150, 600};
        try {
            String sourceId = null;
            int checks = 0;
            // each start after the first checks that the crash before it converged, then sets up the next crash: every
            // kill point is checked after a restart, with half the restarts of a separate check per crash
            for (int point = 0; point <= interruptions.size() * delaysMs.length; point++) {
                try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
                    if (point == 0) {
                        sourceId = createSource(http, serve, key);
                    } else {
                        checks += assertConverged(http, serve, dataDir, key, sourceId);
                    }
                    if (point == interruptions.size() * delaysMs.length) {
                        // everything deletes, and nothing remains: no instance, no archive object
                        for (JsonNode db : list(http, serve, key)) {
                            HttpResponse<String> deleted = http.send(request(serve, key, "/v1/databases/"
                                    + db.get("id").asText()).DELETE().build(), HttpResponse.BodyHandlers.ofString());
                            assertThat(deleted.statusCode()).isEqualTo(204);
                        }
                        serve.stop();
                        break;
                    }
                    String[] call = interruptions.get(point / delaysMs.length);
                    CompletableFuture<HttpResponse<String>> pending = http.sendAsync(
                            request(serve, key, call[1].formatted(sourceId)).method(call[0],
                                    HttpRequest.BodyPublishers.ofString(call[2].formatted(sourceId))).build(),
                            HttpResponse.BodyHandlers.ofString());
                    Processes.sleep(Duration.ofMillis(delaysMs[point % delaysMs.length]));
                    serve.kill();
                    pending.handle((r, e) -> null).join();
                }
            }
            assertThat(instanceDirs(dataDir)).isEmpty();
            assertThat(filesUnder(dataDir.resolve("backups"))).as("archive objects after deleting everything").isEmpty();
            assertThat(filesUnder(dataDir.resolve("backup-staging"))).as("restore staging left behind").isEmpty();
            System.out.printf("backup crash: %d kill points, %d database checks passed%n",
                    interruptions.size() * delaysMs.length, checks);
        } finally {
            for (long pid : postgresProcessesUnder(dataDir)) {
                Processes.signal(pid, "KILL");
            }
            TestingDirectories.deleteRecursively(work);
        }
    }

    /** Creates the source database with its rows and waits until its restorable window has a start and an end. */
    private static String createSource(HttpClient http, TestingPalisadeProcess serve, String key) throws Exception {
        JsonNode created = send(http, serve, key, "POST", "/v1/databases",
                "{\"label\":\"crash-source\",\"isolation\":\"process\"}");
        String sourceId = created.get("id").asText();
        BackupChecks.execute(created.get("connection_url").asText(),
                "create table rows as select g as n, repeat('x', 200) as pad from generate_series(1, " + ROWS + ") g");
        await().atMost(Duration.ofSeconds(120)).until(() -> !send(http, serve, key, "GET",
                "/v1/databases/" + sourceId + "/backups", null).get("window").get("earliest").asText().isEmpty());
        await().atMost(Duration.ofSeconds(60)).until(() -> !send(http, serve, key, "GET",
                "/v1/databases/" + sourceId + "/backups", null).get("window").get("latest").asText().isEmpty());
        return sourceId;
    }

    /**
     * Checks, right after a restart on the data dir, that every database and base backup settled; returns the databases
     * checked.
     */
    private static int assertConverged(HttpClient http, TestingPalisadeProcess serve, Path dataDir, String key,
            String sourceId) throws Exception {
        List<JsonNode> dbs = list(http, serve, key);
        Set<String> ids = new TreeSet<>();
        for (JsonNode db : dbs) {
            String id = db.get("id").asText();
            ids.add(id);
            assertThat(db.get("status").asText()).as("state of %s after restart: %s\n%s", id, db, serve.logTail())
                    .isIn("running", "failed", "stopped");
            if (db.get("status").asText().equals("running")) {
                JsonNode conn = send(http, serve, key, "GET", "/v1/databases/" + id + "/connection", null);
                assertThat(BackupChecks.count(conn.get("connection_url").asText(), "rows", "true"))
                        .as("rows of %s (%s)", id, db.get("label").asText()).isEqualTo(ROWS);
            } else {
                assertThat(db.has("status_reason")).as("%s is %s without a reason", id, db.get("status")).isTrue();
            }
            // a base backup may be under way again (scheduled, or the first of a new database), but none stays
            // running from before the crash: each one ends
            await().atMost(Duration.ofSeconds(90)).untilAsserted(() -> {
                JsonNode backups = send(http, serve, key, "GET", "/v1/databases/" + id + "/backups", null);
                for (JsonNode backup : backups.get("backups")) {
                    assertThat(backup.get("state").asText()).as("base backup %s of %s", backup.get("id"), id)
                            .isIn("complete", "failed");
                }
            });
        }
        assertThat(ids).as("the source survives every crash").contains(sourceId);
        JsonNode source = dbs.stream().filter(db -> db.get("id").asText().equals(sourceId)).findFirst().orElseThrow();
        assertThat(source.get("status").asText()).as("the source after a crash: %s", source).isEqualTo("running");
        assertThat(instanceDirs(dataDir)).as("instance directories match the store").isSubsetOf(ids);
        return dbs.size();
    }

    private static JsonNode send(HttpClient http, TestingPalisadeProcess serve, String key, String method, String path,
            String body) throws Exception {
        HttpResponse<String> response = http.send(request(serve, key, path).method(method,
                body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as("%s %s: %s", method, path, response.body()).isLessThan(300);
        return MAPPER.readTree(response.body());
    }

    private static List<Path> filesUnder(Path dir) throws Exception {
        if (!Files.exists(dir)) {
            return List.of();
        }
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).toList();
        }
    }
}
