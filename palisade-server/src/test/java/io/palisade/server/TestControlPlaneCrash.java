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
import java.util.Map;

/**
 * SIGKILL {@code palisade serve} in the middle of creates and deletes at several points, restart it, and check that
 * everything converges: no database stuck in a transitional state, no orphan process or directory, and the databases
 * that exist work.
 */
class TestControlPlaneCrash {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Map<String, int[]> KILL_DELAYS_MS = Map.of("process", new int[] {0, 150, 400}, "vm", new int[] {300, 1500});

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"process", "vm"})
    void convergesAfterSigkillDuringCreateAndDelete(String isolation) throws Exception {
        String body = "{\"isolation\":\"" + isolation + "\"}";
        Path work = TestingDirectories.newWorkDir("crash");
        Path dataDir = work.resolve("data");
        String key = "pk_crash_test_key_0123456789";
        HttpClient http = HttpClient.newHttpClient();
        int checks = 0;
        try {
            // each restart first checks that the previous crash converged, then sets up the next crash: every kill
            // point is checked after a restart, with half the restarts of a separate check per crash
            boolean crashed = false;
            for (int delay : KILL_DELAYS_MS.get(isolation)) {
                // crash during create
                try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
                    if (crashed) {
                        checks += assertConverged(http, serve, dataDir, key);
                    }
                    CompletableFuture<HttpResponse<String>> create = http.sendAsync(
                            request(serve, key, "/v1/databases").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                            HttpResponse.BodyHandlers.ofString());
                    Processes.sleep(Duration.ofMillis(delay));
                    serve.kill();
                    create.handle((r, e) -> null).join();
                }
                crashed = true;

                // crash during delete of an existing database
                try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
                    checks += assertConverged(http, serve, dataDir, key);
                    HttpResponse<String> created = http.send(
                            request(serve, key, "/v1/databases").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                            HttpResponse.BodyHandlers.ofString());
                    assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
                    String id = MAPPER.readTree(created.body()).get("id").asText();
                    CompletableFuture<HttpResponse<String>> delete = http.sendAsync(
                            request(serve, key, "/v1/databases/" + id).DELETE().build(), HttpResponse.BodyHandlers.ofString());
                    Processes.sleep(Duration.ofMillis(delay / 4));
                    serve.kill();
                    delete.handle((r, e) -> null).join();
                }
            }
            // finally everything can be deleted and nothing remains
            try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
                checks += assertConverged(http, serve, dataDir, key);
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
            assertThat(qemuProcessesUnder(dataDir)).as("QEMU processes after a clean stop").isEmpty();
            assertThat(ourNamespaces()).as("network namespaces after a clean stop").isEmpty();
            System.out.printf("control-plane crash (%s): %d kill points, %d convergence checks passed%n",
                    isolation, KILL_DELAYS_MS.get(isolation).length * 2, checks);
        } finally {
            for (long pid : postgresProcessesUnder(dataDir)) {
                Processes.signal(pid, "KILL");
            }
            for (long pid : qemuProcessesUnder(dataDir)) {
                Processes.signal(pid, "KILL");
            }
            for (String ns : ourNamespaces()) {
                Processes.run(List.of("ip", "netns", "del", ns), Duration.ofSeconds(10), null);
            }
            TestingDirectories.deleteRecursively(work);
        }
    }

    /**
     * Checks, right after a restart on the data dir, that the crash before it converged; returns how many databases it
     * checked.
     */
    private static int assertConverged(HttpClient http, TestingPalisadeProcess serve, Path dataDir, String key)
            throws Exception {
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
                } catch (java.sql.SQLException e) {
                    throw new AssertionError(db.get("id").asText() + " is listed as running but refuses its own "
                            + "credentials: " + e.getMessage() + "\n--- palisade serve log ---\n" + serve.logTail(), e);
                }
            }
        }
        // one postmaster for the store and one per running process database, one QEMU per running vm database,
        // and a network namespace only for vm databases that exist
        long runningProcess = dbs.stream().filter(db -> db.get("status").asText().equals("running")
                && db.get("isolation").asText().equals("process")).count();
        long runningVm = dbs.stream().filter(db -> db.get("status").asText().equals("running")
                && db.get("isolation").asText().equals("vm")).count();
        assertThat(postgresProcessesUnder(dataDir)).as("postmasters under the data dir").hasSize((int) runningProcess + 1);
        assertThat(qemuProcessesUnder(dataDir)).as("QEMU processes under the data dir").hasSize((int) runningVm);
        for (String ns : ourNamespaces()) {
            assertThat(ids).as("namespace %s belongs to a database", ns).contains(ns.substring("pal-".length()));
        }
        return dbs.size();
    }

    static List<JsonNode> list(HttpClient http, TestingPalisadeProcess serve, String key) throws Exception {
        HttpResponse<String> response = http.send(request(serve, key, "/v1/databases").build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        List<JsonNode> out = new ArrayList<>();
        MAPPER.readTree(response.body()).get("databases").forEach(out::add);
        return out;
    }

    static HttpRequest.Builder request(TestingPalisadeProcess serve, String key, String path) {
        return HttpRequest.newBuilder(URI.create(serve.url() + path)).timeout(Duration.ofMinutes(2))
                .header("Authorization", "Bearer " + key);
    }

    static Set<String> instanceDirs(Path dataDir) throws IOException {
        Set<String> out = new TreeSet<>();
        for (Path dir : List.of(dataDir.resolve("instances/process"), dataDir.resolve("vm"))) {
            if (Files.isDirectory(dir)) {
                try (Stream<Path> children = Files.list(dir)) {
                    children.map(p -> p.getFileName().toString()).filter(name -> name.startsWith("db-")).forEach(out::add);
                }
            }
        }
        return out;
    }

    private static List<Long> qemuProcessesUnder(Path dataDir) {
        return ProcessHandle.allProcesses()
                .filter(p -> p.info().command().orElse("").contains("qemu-system")
                        && p.info().commandLine().orElse("").contains(dataDir.toString() + "/"))
                .map(ProcessHandle::pid)
                .toList();
    }

    /** Network namespaces whose veth sits in this test's pool (10.220.0.0/16). */
    private static List<String> ourNamespaces() {
        List<String> out = new java.util.ArrayList<>();
        for (String line : Processes.run(List.of("ip", "netns", "list"), Duration.ofSeconds(10), null).output().split("\n")) {
            String ns = line.strip().split(" ")[0];
            if (ns.startsWith("pal-") && Processes.run(List.of("ip", "-n", ns, "-4", "addr"), Duration.ofSeconds(10), null)
                    .output().contains("10.220.")) {
                out.add(ns);
            }
        }
        return out;
    }

    /** Postmasters (not their children) whose data directory is under {@code dataDir}. */
    static List<Long> postgresProcessesUnder(Path dataDir) {
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
