package io.palisade.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.host.PostgresBinaries;
import io.palisade.host.PostgresServer;
import io.palisade.host.Processes;
import io.palisade.server.PalisadeServer;
import io.palisade.server.ServerConfig;
import io.palisade.spi.PostgresVersion;
import io.palisade.testing.TestingDirectories;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Issue 2's benchmark: {@code POST /v1/databases} → first successful query through the returned URL (process rung),
 * against the floor of the same work done by hand: copy the pre-initialised template and start postgres on it, then
 * query.
 */
final class CreateBench {
    private static final int RUNS = 20;
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private CreateBench() {}

    static void run() throws Exception {
        Path work = TestingDirectories.newWorkDir("bench-create");
        String key = "pk_bench_" + Long.toHexString(System.nanoTime());
        Stats palisade = new Stats();
        Stats baseline = new Stats();
        try (PalisadeServer server = PalisadeServer.start(
                ServerConfig.from(Map.of("server.data-dir", work.resolve("data").toString(), "api.port", "0")),
                Optional.of(key))) {
            HttpClient http = HttpClient.newHttpClient();
            String api = "http://127.0.0.1:" + server.apiPort();
            // warm-up: template build and JIT
            deleteAll(http, api, key, List.of(create(http, api, key)));
            for (int i = 0; i < RUNS; i++) {
                long start = System.nanoTime();
                JsonNode db = create(http, api, key);
                query(db.get("jdbc_url").asText(), db.get("username").asText(), db.get("password").asText());
                palisade.add((System.nanoTime() - start) / 1e6);
                deleteAll(http, api, key, List.of(db));
            }
            // baseline: copy the same template and pg_ctl-start it by hand (no API, store, cgroup, credentials)
            Path cache = work.resolve("data/cache");
            PostgresBinaries binaries = PostgresBinaries.install(cache, PostgresVersion.DEFAULT);
            Path template = cache.resolve("templates/process-" + PostgresVersion.DEFAULT.release());
            var user = io.palisade.host.ServiceUser.resolve("palisade");
            for (int i = 0; i < RUNS; i++) {
                Path data = work.resolve("baseline-" + i);
                long start = System.nanoTime();
                Processes.check(List.of("cp", "-a", template.toString(), data.toString()), Duration.ofMinutes(1));
                user.chown(data);
                int port = PostgresServer.freePort();
                Processes.check(user.wrap(List.of(binaries.bin("pg_ctl").toString(), "-D", data.toString(), "-w", "-s",
                        "-l", data.resolve("log").toString(), "-o",
                        "-p " + port + " -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp", "start")),
                        Duration.ofMinutes(1));
                queryTrust(port);
                baseline.add((System.nanoTime() - start) / 1e6);
                Processes.check(user.wrap(List.of(binaries.bin("pg_ctl").toString(), "-D", data.toString(), "-m", "immediate",
                        "-s", "stop")), Duration.ofMinutes(1));
                Processes.run(List.of("rm", "-rf", data.toString()), Duration.ofMinutes(1), null);
            }
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
        System.out.println();
        System.out.println("## create → first query (process rung), " + RUNS + " runs each");
        System.out.println("machine: " + Machine.describe());
        System.out.println();
        System.out.println("| path | p50 ms | p95 ms | max ms |");
        System.out.println("|---|---:|---:|---:|");
        row("palisade: POST /v1/databases → first query via connection URL", palisade);
        row("baseline: cp template + pg_ctl start -w + first query", baseline);
        System.out.printf("%nratio palisade/baseline at p50: %.2f×%n", palisade.percentile(50) / baseline.percentile(50));
    }

    private static void row(String name, Stats stats) {
        System.out.printf("| %s | %.0f | %.0f | %.0f |%n", name, stats.percentile(50), stats.percentile(95), stats.max());
    }

    private static JsonNode create(HttpClient http, String api, String key) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(api + "/v1/databases"))
                .header("Authorization", "Bearer " + key)
                .POST(HttpRequest.BodyPublishers.ofString("{\"label\":\"bench\"}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 201) {
            throw new IllegalStateException("create failed: " + response.body());
        }
        return MAPPER.readTree(response.body());
    }

    private static void deleteAll(HttpClient http, String api, String key, List<JsonNode> dbs) throws Exception {
        for (JsonNode db : dbs) {
            http.send(HttpRequest.newBuilder(URI.create(api + "/v1/databases/" + db.get("id").asText()))
                    .header("Authorization", "Bearer " + key).DELETE().build(), HttpResponse.BodyHandlers.discarding());
        }
    }

    private static void query(String jdbcUrl, String user, String password) throws Exception {
        try (Connection c = DriverManager.getConnection(jdbcUrl, user, password);
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT 1")) {
            rs.next();
        }
    }

    private static void queryTrust(int port) throws Exception {
        // the template trusts only the local socket for the superuser; the tenant role has no password yet, so the
        // baseline measures readiness at protocol level, which is what palisade waits for too
        if (!io.palisade.host.PgProbe.isReady(new io.palisade.spi.Endpoint("127.0.0.1", port), Duration.ofSeconds(5))) {
            throw new IllegalStateException("baseline server not ready");
        }
    }
}
