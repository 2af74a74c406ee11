package io.palisade.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.server.PalisadeServer;
import io.palisade.server.ServerConfig;
import io.palisade.testing.RawHttpClient;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The broker on the user's path: a real {@link PalisadeServer} (in this process, metadata store and all), a
 * {@code process} database created through the API, and one client with HTTP keep-alive (a raw socket, so the client
 * adds almost nothing) sending {@code SELECT 1} through Neon's {@code POST /sql} and through PandaStack's
 * {@code POST /v1/databases/{id}/proxy/v1/query} with the broker token, as the README shows. Each route gets a database
 * of its own and a new connection, and {@code -Dbench.broker.requests} requests (default 6,000); the first 600 (cold:
 * new connection, empty pool, first checks against the store) and the rest (warm) are reported apart. Prints a table.
 */
final class BrokerPathBench {
    private static final int COLD = 600;
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private BrokerPathBench() {}

    record Row(String route, long[] coldNanos, long[] warmNanos, double warmSeconds) {}

    static void run() throws Exception {
        int requests = Math.max(COLD + 100, Integer.getInteger("bench.broker.requests", 6_000));
        Path work = TestingDirectories.newWorkDir("bench-broker-path");
        String key = "pk_bench_" + Long.toHexString(System.nanoTime());
        Row neon;
        Row panda;
        try (PalisadeServer server = PalisadeServer.start(
                ServerConfig.from(Map.of("server.data-dir", work.resolve("data").toString(), "api.port", "0")),
                Optional.of(key))) {
            HttpClient http = HttpClient.newHttpClient();
            String api = "http://127.0.0.1:" + server.apiPort();
            JsonNode forNeon = create(http, api, key, "bench-neon");
            JsonNode forPanda = create(http, api, key, "bench-panda");
            neon = measure("POST /sql (Neon)", server.apiPort(), neonRequest(forNeon), requests);
            panda = measure("POST /v1/databases/{id}/proxy/v1/query (PandaStack)", server.apiPort(),
                    pandaRequest(forPanda), requests);
            for (JsonNode db : new JsonNode[] {forNeon, forPanda}) {
                http.send(HttpRequest.newBuilder(URI.create(api + "/v1/databases/" + db.get("id").asText()))
                        .header("Authorization", "Bearer " + key).DELETE().build(),
                        HttpResponse.BodyHandlers.discarding());
            }
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
        System.out.println();
        System.out.println("## broker SELECT 1 on the user's path: palisade serve (in process), process rung,"
                + " one client, HTTP keep-alive, " + requests + " requests per route");
        System.out.println("machine: " + Machine.describe());
        System.out.println();
        System.out.println("| route | cold p50 ms | cold p99 ms | warm p50 ms | warm p99 ms | warm req/s |");
        System.out.println("|---|---:|---:|---:|---:|---:|");
        for (Row row : new Row[] {neon, panda}) {
            System.out.printf(Locale.ROOT, "| %s | %.3f | %.3f | %.3f | %.3f | %.0f |%n", row.route(),
                    percentile(row.coldNanos(), 50), percentile(row.coldNanos(), 99),
                    percentile(row.warmNanos(), 50), percentile(row.warmNanos(), 99),
                    row.warmNanos().length / row.warmSeconds());
        }
        System.out.println();
        System.out.println("cold = the first " + COLD + " requests on a new connection to a database the broker has not"
                + " served yet; warm = the rest");
    }

    private static Row measure(String route, int port, byte[] request, int requests) throws IOException {
        long[] cold = new long[COLD];
        long[] warm = new long[requests - COLD];
        long warmStart = 0;
        try (RawHttpClient client = new RawHttpClient(port)) {
            for (int i = 0; i < requests; i++) {
                if (i == COLD) {
                    warmStart = System.nanoTime();
                }
                long t0 = System.nanoTime();
                client.send(request);
                long took = System.nanoTime() - t0;
                if (i < COLD) {
                    cold[i] = took;
                } else {
                    warm[i - COLD] = took;
                }
            }
        }
        double warmSeconds = (System.nanoTime() - warmStart) / 1e9;
        System.out.printf(Locale.ROOT, "%s: %d requests done%n", route, requests);
        return new Row(route, cold, warm, warmSeconds);
    }

    private static double percentile(long[] nanos, double p) {
        long[] sorted = nanos.clone();
        Arrays.sort(sorted);
        int rank = (int) Math.ceil(p / 100.0 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))] / 1e6;
    }

    private static JsonNode create(HttpClient http, String api, String key, String label) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(api + "/v1/databases"))
                .header("Authorization", "Bearer " + key)
                .POST(HttpRequest.BodyPublishers.ofString(
                        "{\"label\":\"" + label + "\",\"isolation\":\"process\"}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 201) {
            throw new IllegalStateException("create of a process database answered " + response.statusCode() + ": "
                    + response.body());
        }
        return MAPPER.readTree(response.body());
    }

    /** Neon's {@code /sql} as {@code @neondatabase/serverless} sends it: the login in the connection string header. */
    private static byte[] neonRequest(JsonNode db) {
        String connection = "postgres://" + encode(db.get("username").asText()) + ":"
                + encode(db.get("password").asText()) + "@" + db.get("id").asText() + ".db.localhost/"
                + encode(db.get("database").asText());
        return RawHttpClient.post("/sql", "Neon-Connection-String: " + connection + "\r\nNeon-Raw-Text-Output: true\r\n"
                + "Neon-Array-Mode: true\r\n", "{\"query\":\"SELECT 1\",\"params\":[]}");
    }

    /** PandaStack's {@code v1/query} under the database's broker URL, with its broker token. */
    private static byte[] pandaRequest(JsonNode db) {
        String path = URI.create(db.get("broker_url").asText()).getPath() + "/v1/query";
        return RawHttpClient.post(path, "Authorization: Bearer " + db.get("broker_token").asText() + "\r\n"
                + "Content-Type: application/json\r\n", "{\"database\":\"pandastack\",\"sql\":\"SELECT 1\"}");
    }

    private static String encode(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }
}
