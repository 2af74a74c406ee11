package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.host.Processes;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * SIGKILL {@code palisade serve} in the middle of creates and deletes at several points, restart it, and check that
 * everything converges: no database stuck in a transitional state, no orphan process or directory, and the databases
 * that exist work.
 */
class TestControlPlaneCrash {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final int[] KILL_DELAYS_MS = {0, 150, 400};

    @Test
    void convergesAfterSigkillDuringCreateAndDelete() throws Exception {
        Path work = TestingDirectories.newWorkDir("crash");
        Path dataDir = work.resolve("data");
        String key = "pk_crash_test_key_0123456789";
        HttpClient http = HttpClient.newHttpClient();
        int checks = 0;
        try {
            for (int delay : KILL_DELAYS_MS) {
                // crash during create
                try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
                    CompletableFuture<HttpResponse<String>> create = http.sendAsync(
                            request(serve, key, "/v1/databases").POST(HttpRequest.BodyPublishers.ofString("{}")).build(),
                            HttpResponse.BodyHandlers.ofString());
                    Processes.sleep(Duration.ofMillis(delay));
                    serve.kill();
                    create.handle((r, e) -> null).join();
                }
                checks += assertConverged(http, dataDir, key);

                // crash during delete of an existing database
                try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
                    HttpResponse<String> created = http.send(
                            request(serve, key, "/v1/databases").POST(HttpRequest.BodyPublishers.ofString("{}")).build(),
                            HttpResponse.BodyHandlers.ofString());
                    assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
                    String id = MAPPER.readTree(created.body()).get("id").asText();
                    CompletableFuture<HttpResponse<String>> delete = http.sendAsync(
                            request(serve, key, "/v1/databases/" + id).DELETE().build(), HttpResponse.BodyHandlers.ofString());
                    Processes.sleep(Duration.ofMillis(delay / 4));
                    serve.kill();
                    delete.handle((r, e) -> null).join();
                }
                checks += assertConverged(http, dataDir, key);
            }
            // finally everything can be deleted and nothing remains
            try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
                for (JsonNode db : list(http, serve, key)) {
                    HttpResponse<String> deleted = http.send(
                            request(serve, key, "/v1/databases/" + db.get("id").asText()).DELETE().build(),
                            HttpResponse.BodyHandlers.ofString());
                    assertThat(deleted.statusCode()).isEqualTo(204);
                }
                serve.stop();
            }
            assertThat(instanceDirs(dataDir)).isEmpty();
            assertThat(postgresProcessesUnder(dataDir)).as("postgres processes after a clean stop").isEmpty();
            System.out.printf("control-plane crash: %d kill points, %d convergence checks passed%n",
                    KILL_DELAYS_MS.length * 2, checks);
        } finally {
            for (long pid : postgresProcessesUnder(dataDir)) {
                Processes.signal(pid, "KILL");
            }
            TestingDirectories.deleteRecursively(work);
        }
    }

    /** Restarts palisade on the data dir and checks convergence; returns how many databases it checked. */
    private static int assertConverged(HttpClient http, Path dataDir, String key) throws Exception {
        try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
            List<JsonNode> dbs = list(http, serve, key);
            Set<String> ids = new TreeSet<>();
            for (JsonNode db : dbs) {
                ids.add(db.get("id").asText());
                assertThat(db.get("status").asText()).as("state of %s after restart: %s", db.get("id"), db)
                        .isIn("running", "failed");
            }
            assertThat(instanceDirs(dataDir)).as("instance directories match the store").isEqualTo(ids);
            for (JsonNode db : dbs) {
                if (db.get("status").asText().equals("running")) {
                    JsonNode conn = MAPPER.readTree(http.send(
                            request(serve, key, "/v1/databases/" + db.get("id").asText() + "/connection").build(),
                            HttpResponse.BodyHandlers.ofString()).body());
                    try (var c = PgUrls.connect(conn.get("connection_url").asText())) {
                        assertThat(c.isValid(5)).isTrue();
                    }
                }
            }
            // one postmaster for the store and one per running database, no more
            long running = dbs.stream().filter(db -> db.get("status").asText().equals("running")).count();
            assertThat(postgresProcessesUnder(dataDir)).as("postmasters under the data dir").hasSize((int) running + 1);
            serve.stop();
            return dbs.size();
        }
    }

    private static List<JsonNode> list(HttpClient http, TestingPalisadeProcess serve, String key) throws Exception {
        HttpResponse<String> response = http.send(request(serve, key, "/v1/databases").build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        List<JsonNode> out = new ArrayList<>();
        MAPPER.readTree(response.body()).get("databases").forEach(out::add);
        return out;
    }

    private static HttpRequest.Builder request(TestingPalisadeProcess serve, String key, String path) {
        return HttpRequest.newBuilder(URI.create(serve.url() + path)).timeout(Duration.ofMinutes(2))
                .header("Authorization", "Bearer " + key);
    }

    private static Set<String> instanceDirs(Path dataDir) throws IOException {
        Path dir = dataDir.resolve("instances/process");
        Set<String> out = new TreeSet<>();
        if (Files.isDirectory(dir)) {
            try (Stream<Path> children = Files.list(dir)) {
                children.forEach(p -> out.add(p.getFileName().toString()));
            }
        }
        return out;
    }

    /** Postmasters (not their children) whose data directory is under {@code dataDir}. */
    private static List<Long> postgresProcessesUnder(Path dataDir) {
        String prefix = dataDir.toString() + "/";
        return ProcessHandle.allProcesses()
                .filter(p -> {
                    List<String> args = p.info().arguments().map(List::of).orElse(List.of());
                    int d = args.indexOf("-D");
                    return p.info().command().orElse("").endsWith("/postgres") && d >= 0 && d + 1 < args.size()
                            && args.get(d + 1).startsWith(prefix);
                })
                .map(ProcessHandle::pid)
                .toList();
    }
}
