package io.palisade.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.host.Processes;
import io.palisade.server.PalisadeServer;
import io.palisade.server.ServerConfig;
import io.palisade.testing.TestingDirectories;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;

/**
 * Issue 6's benchmark: SIGKILL a tenant's instance (the QEMU process of a vm database, the postmaster of a process
 * database) and time until the first successful query through the proxy, with nobody calling the API — palisade's
 * reconciler notices and restarts it. The process rung is the baseline measured in the same run.
 */
final class RecoveryBench {
    private static final int TRIALS = 10;
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private RecoveryBench() {}

    static void run() throws Exception {
        Path work = TestingDirectories.newWorkDir("bench-recovery");
        String key = "pk_bench_" + Long.toHexString(System.nanoTime());
        Map<String, Stats> results = new java.util.LinkedHashMap<>();
        String accelerator = "n/a";
        try (PalisadeServer server = PalisadeServer.start(ServerConfig.from(Map.of(
                        "server.data-dir", work.resolve("data").toString(),
                        "api.port", "0",
                        "proxy.port", "0",
                        "agent.reconcile-interval", "250ms",
                        "vm.network-pool", "10.217.0.0/16",
                        "vm.image-dir", TestingDirectories.repoDir().resolve(".cache/guest/current").toString())),
                Optional.of(key))) {
            HttpClient http = HttpClient.newHttpClient();
            String api = "http://127.0.0.1:" + server.apiPort();
            for (String isolation : List.of("process", "vm")) {
                boolean usable = server.service().probes().get(io.palisade.spi.Rung.fromWire(isolation)).usable();
                if (!usable) {
                    System.err.println("recovery: skipping " + isolation + ": " + server.service().probes().get(io.palisade.spi.Rung.fromWire(isolation)).reason());
                    continue;
                }
                if (isolation.equals("vm")) {
                    accelerator = server.service().probes().get(io.palisade.spi.Rung.VM).accelerator();
                }
                JsonNode db = send(http, key, HttpRequest.newBuilder(URI.create(api + "/v1/databases"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"isolation\":\"" + isolation
                                + "\",\"suspend_after_seconds\":" + (isolation.equals("vm") ? "\"never\"" : "null") + "}")));
                String id = db.get("id").asText();
                Stats stats = new Stats();
                try {
                    for (int trial = 0; trial < TRIALS; trial++) {
                        long pid = send(http, key, HttpRequest.newBuilder(URI.create(api + "/v1/databases/" + id + "/stats")).GET())
                                .get("pid").asLong();
                        query(db);
                        long start = System.nanoTime();
                        Processes.check(List.of("kill", "-KILL", Long.toString(pid)), Duration.ofSeconds(5));
                        long deadline = start + Duration.ofSeconds(180).toNanos();
                        boolean ok = false;
                        while (!ok && System.nanoTime() < deadline) {
                            try {
                                query(db);
                                ok = true;
                            } catch (Exception e) {
                                Processes.sleep(Duration.ofMillis(20));
                            }
                        }
                        if (!ok) {
                            throw new IllegalStateException(isolation + " database did not recover within 180 s");
                        }
                        stats.add((System.nanoTime() - start) / 1e6);
                        System.err.printf("recovery %s trial %d: %.0f ms%n", isolation, trial + 1, (System.nanoTime() - start) / 1e6);
                    }
                } finally {
                    http.send(HttpRequest.newBuilder(URI.create(api + "/v1/databases/" + id))
                            .header("Authorization", "Bearer " + key).DELETE().build(), HttpResponse.BodyHandlers.discarding());
                }
                results.put(isolation, stats);
            }
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
        System.out.println();
        System.out.println("## recovery after SIGKILL of the tenant's instance → first successful query (reconcile every 250 ms), "
                + TRIALS + " trials");
        System.out.println("machine: " + Machine.describe() + "; vm accelerator: " + accelerator);
        System.out.println();
        System.out.println("| rung | what is killed | p50 ms | max ms |");
        System.out.println("|---|---|---:|---:|");
        results.forEach((isolation, stats) -> System.out.printf("| %s | %s | %.0f | %.0f |%n", isolation,
                isolation.equals("vm") ? "QEMU process" : "postmaster", stats.percentile(50), stats.max()));
        if (results.containsKey("vm") && results.containsKey("process")) {
            System.out.printf("%nratio vm/process at p50: %.1f×%n",
                    results.get("vm").percentile(50) / results.get("process").percentile(50));
        }
    }

    private static JsonNode send(HttpClient http, String key, HttpRequest.Builder request) throws Exception {
        HttpResponse<String> response = http.send(request.header("Authorization", "Bearer " + key)
                .timeout(Duration.ofMinutes(5)).build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() >= 300) {
            throw new IllegalStateException(response.statusCode() + ": " + response.body());
        }
        return MAPPER.readTree(response.body());
    }

    private static void query(JsonNode db) throws Exception {
        Properties properties = new Properties();
        properties.setProperty("user", db.get("username").asText());
        properties.setProperty("password", db.get("password").asText());
        properties.setProperty("connectTimeout", "5");
        properties.setProperty("socketTimeout", "10");
        try (Connection c = DriverManager.getConnection(db.get("jdbc_url").asText(), properties);
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT 1")) {
            rs.next();
        }
    }
}
