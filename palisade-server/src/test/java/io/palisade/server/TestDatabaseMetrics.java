package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.store.DatabaseState;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The per-database sampler end to end on the process rung: traffic through the proxy and the broker shows up in
 * {@code GET /v1/databases/{id}/metrics}; another account sees 404; a database that is not running is never sampled
 * (nor woken) and a deleted one is dropped; the Grafana dashboard uses only metrics a live scrape has, and the
 * Prometheus scrape config's path and bearer token work. The sampling step is 1 s here (the internal setting).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestDatabaseMetrics {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final String METRICS_TOKEN = "metrics-token-for-tests-0123456789";

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private TestingPalisade palisade;
    private String previousStep;

    @BeforeAll
    void start() {
        previousStep = System.setProperty(DatabaseMetricsSampler.STEP_PROPERTY, "1000");
        // no reconcile pass during the test: a record set to suspended below must stay so unless something wakes it
        palisade = TestingPalisade.requiring("process",
                Map.of("metrics.token", METRICS_TOKEN, "agent.reconcile-interval", "1h"));
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.close();
        }
        if (previousStep == null) {
            System.clearProperty(DatabaseMetricsSampler.STEP_PROPERTY);
        } else {
            System.setProperty(DatabaseMetricsSampler.STEP_PROPERTY, previousStep);
        }
    }

    @Test
    void trafficThroughProxyAndBrokerShowsInTheHourWindow() throws Exception {
        JsonNode db = create("charts");
        String id = db.get("id").asText();
        try (Connection connection = PgUrls.connect(db.get("connection_url").asText());
                Statement statement = connection.createStatement()) {
            statement.execute("CREATE TABLE t (n int)");
            await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(300)).untilAsserted(() -> {
                statement.execute("INSERT INTO t SELECT generate_series(1, 1000)");
                statement.executeQuery("SELECT count(*) FROM t").close();
                assertThat(brokerQuery(db).statusCode()).isEqualTo(200);
                JsonNode metrics = metrics(id, "1h", palisade.adminKey()).json();
                for (String series : List.of("connections", "transactions_per_second", "storage_bytes",
                        "proxy_bytes_per_second", "proxy_connections", "broker_requests_per_second")) {
                    assertThat(maxOf(metrics, series)).as("%s in %s", series, metrics).isPositive();
                }
            });
        }
        TestingPalisade.Response hour = metrics(id, null, palisade.adminKey());
        assertThat(hour.status()).isEqualTo(200);
        JsonNode body = hour.json();
        assertThat(body.get("id").asText()).isEqualTo(id);
        assertThat(body.get("window").asText()).isEqualTo("1h");
        assertThat(body.get("step_seconds").asLong()).isEqualTo(1);
        assertThat(fieldNames(body.get("series"))).containsExactlyElementsOf(DatabaseMetricsSampler.SERIES);
        List<Long> times = times(body, "connections");
        assertThat(times).isSorted().doesNotHaveDuplicates();
        assertThat(times.getLast()).isBetween(Instant.now().getEpochSecond() - 5, Instant.now().getEpochSecond() + 1);
        for (String series : DatabaseMetricsSampler.SERIES) {
            assertThat(times(body, series)).as("timestamps of %s", series).isEqualTo(times);
        }
        if (healthCgroups()) {
            assertThat(maxOf(body, "memory_bytes")).as("memory with cgroups").isPositive();
        }
        JsonNode day = metrics(id, "1d", palisade.adminKey()).json();
        assertThat(day.get("window").asText()).isEqualTo("1d");
        assertThat(day.get("step_seconds").asLong()).isEqualTo(DatabaseHistory.STEPS_PER_BUCKET);
        assertThat(maxOf(day, "storage_bytes")).isPositive();
        for (JsonNode point : day.get("series").get("connections")) {
            assertThat(point.get(0).asLong() % DatabaseHistory.STEPS_PER_BUCKET).isZero();
        }
    }

    @Test
    void anotherAccountSeesNotFoundAndABadWindowIsRejected() throws Exception {
        JsonNode db = create("private-charts");
        String id = db.get("id").asText();
        String other = palisade.newAccount("metrics-other");
        TestingPalisade.Response foreign = metrics(id, "1h", other);
        String unknownId = "db-" + "0".repeat(id.length() - 3);
        TestingPalisade.Response unknown = metrics(unknownId, "1h", other);
        assertThat(foreign.status()).isEqualTo(404);
        assertThat(foreign.body().replace(id, "{id}")).isEqualTo(unknown.body().replace(unknownId, "{id}"));
        assertThat(foreign.body()).doesNotContain("connections");
        assertThat(metrics(id, "1h", null).status()).isEqualTo(401);

        TestingPalisade.Response bad = metrics(id, "7d", palisade.adminKey());
        assertThat(bad.status()).isEqualTo(400);
        assertThat(bad.contentType()).startsWith("application/problem+json");
        assertThat(bad.json().get("detail").asText()).contains("1h").contains("1d").contains("7d");
        delete(id);
    }

    @Test
    void aDatabaseNotRunningIsNotSampledNorWokenAndADeletedOneIsDropped() throws Exception {
        JsonNode db = create("quiet");
        String id = db.get("id").asText();
        DatabaseMetricsSampler sampler = palisade.server().metricsSampler();
        await().atMost(Duration.ofSeconds(30)).until(() -> sampler.history(id).isPresent()
                && maxOf(metrics(id, "1h", palisade.adminKey()).json(), "storage_bytes") > 0);

        // recorded as suspended (what a vm suspend records); the process stays, so a sampler that ignored the state
        // would still learn its storage, and one that resolved it would wake it (back to running)
        Instant lastActive = palisade.server().store().find(id).orElseThrow().lastActiveAt();
        palisade.server().store().transition(id, DatabaseState.SUSPENDED, null);
        // a pass that read the database as running just before may still record it: one whole pass after the
        // transition (passes run one at a time) proves that any such pass is over
        await().atMost(Duration.ofSeconds(30)).until(sampler::sampleOnce);
        long suspendedAt = Instant.now().getEpochSecond();
        Thread.sleep(4_000);
        JsonNode metrics = metrics(id, "1h", palisade.adminKey()).json();
        List<Long> sampled = new ArrayList<>();
        for (JsonNode point : metrics.get("series").get("storage_bytes")) {
            if (!point.get(1).isNull()) {
                sampled.add(point.get(0).asLong());
            }
        }
        assertThat(sampled).isNotEmpty().allSatisfy(time -> assertThat(time).isLessThanOrEqualTo(suspendedAt + 1));
        var record = palisade.server().store().find(id).orElseThrow();
        assertThat(record.state()).isEqualTo(DatabaseState.SUSPENDED);
        assertThat(record.lastActiveAt()).isEqualTo(lastActive);

        palisade.server().store().transition(id, DatabaseState.RUNNING, null);
        delete(id);
        await().atMost(Duration.ofSeconds(10)).until(() -> sampler.history(id).isEmpty());
        assertThat(scrape(METRICS_TOKEN).body()).doesNotContain("palisade_database_storage_bytes{database=\"" + id);
        assertThat(metrics(id, "1h", palisade.adminKey()).status()).isEqualTo(404);
    }

    @Test
    void dashboardUsesOnlyMetricsTheServerHasAndTheScrapeConfigWorks() throws Exception {
        JsonNode db = create("scraped");
        try (Connection connection = PgUrls.connect(db.get("connection_url").asText());
                Statement statement = connection.createStatement()) {
            statement.executeQuery("SELECT 1").close();
            assertThat(brokerQuery(db).statusCode()).isEqualTo(200);
            String id = db.get("id").asText();
            // the sampler's gauges appear after a pass has seen the database
            await().atMost(Duration.ofSeconds(30)).until(() -> scrape(METRICS_TOKEN).body()
                    .contains("palisade_database_storage_bytes{database=\"" + id + "\""));

            String config = Files.readString(repo().resolve("deploy/prometheus/prometheus.yml"));
            String path = single(config, "metrics_path:\\s*(\\S+)");
            assertThat(single(config, "type:\\s*(\\S+)")).isEqualTo("Bearer");
            assertThat(config).contains("credentials_file:");
            HttpResponse<String> withToken = get(path, METRICS_TOKEN);
            assertThat(withToken.statusCode()).isEqualTo(200);
            assertThat(withToken.body()).contains("database=\"" + id + "\"");
            assertThat(get(path, null).statusCode()).isEqualTo(401);

            JsonNode dashboard = MAPPER.readTree(repo().resolve("deploy/grafana/palisade-dashboard.json").toFile());
            List<String> expressions = new ArrayList<>();
            collectExpressions(dashboard, expressions);
            assertThat(expressions).hasSizeGreaterThan(10);
            Set<String> used = new TreeSet<>();
            expressions.forEach(expression -> used.addAll(PromQl.metricNames(expression)));
            System.out.println("dashboard metrics: " + used);
            assertThat(used).contains("palisade_database_connections", "palisade_proxy_connections",
                    "palisade_broker_database_requests_total");
            // per-database series of other components (e.g. the archiver's, refreshed every 5 s) may take a moment
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(seriesNames(get(path,
                    METRICS_TOKEN).body())).as("series of the live scrape").containsAll(used));
            assertThat(dashboard.at("/templating/list/0/name").asText()).isEqualTo("database");
        }
        // every component's per-database series go with the database: a platform that keeps creating and deleting
        // tenants must not keep growing its scrape
        String id = db.get("id").asText();
        delete(id);
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(scrape(METRICS_TOKEN).body().lines()
                .filter(line -> line.contains("database=\"" + id + "\"")).toList()).as("series of the deleted "
                + id).isEmpty());
    }

    // helpers

    private static Set<String> seriesNames(String scrape) {
        Set<String> names = new TreeSet<>();
        for (String line : scrape.split("\n")) {
            if (!line.isBlank() && !line.startsWith("#")) {
                names.add(line.split("[{ ]", 2)[0]);
            }
        }
        return names;
    }

    private static void collectExpressions(JsonNode node, List<String> out) {
        if (node.isObject() && node.path("type").asText().equals("datasource")) {
            return; // a datasource variable's query names the plugin, not a metric
        }
        if (node.isObject()) {
            node.properties().forEach(field -> {
                if ((field.getKey().equals("expr") || field.getKey().equals("query")) && field.getValue().isTextual()) {
                    out.add(field.getValue().asText());
                } else if (field.getKey().equals("definition") && field.getValue().isTextual()) {
                    out.add(field.getValue().asText());
                } else {
                    collectExpressions(field.getValue(), out);
                }
            });
        } else if (node.isArray()) {
            node.forEach(child -> collectExpressions(child, out));
        }
    }

    private static String single(String text, String regex) {
        Matcher matcher = Pattern.compile(regex).matcher(text);
        assertThat(matcher.find()).as("%s in %s", regex, text).isTrue();
        return matcher.group(1).replace("\"", "").replace("'", "");
    }

    private static Path repo() {
        return io.palisade.testing.TestingDirectories.repoDir();
    }

    private boolean healthCgroups() throws Exception {
        JsonNode health = palisade.get("/v1/health").json();
        return !health.at("/cgroups/mode").asText("none").equals("none");
    }

    private JsonNode create(String label) {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"" + label + "\",\"isolation\":\"process\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        return created.json();
    }

    private void delete(String id) {
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
    }

    private TestingPalisade.Response metrics(String id, String window, String key) {
        return palisade.request("GET", "/v1/databases/" + id + "/metrics" + (window == null ? "" : "?window=" + window),
                null, key);
    }

    private HttpResponse<String> brokerQuery(JsonNode db) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(db.get("broker_url").asText() + "/v1/query"))
                .timeout(Duration.ofSeconds(30))
                .header("Authorization", "Bearer " + db.get("broker_token").asText())
                .POST(HttpRequest.BodyPublishers.ofString(
                        "{\"database\":\"pandastack\",\"sql\":\"SELECT 1 AS one\"}")).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> scrape(String token) throws Exception {
        return get("/metrics", token);
    }

    private HttpResponse<String> get(String path, String token) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(palisade.apiUrl() + path))
                .timeout(Duration.ofSeconds(30));
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static double maxOf(JsonNode metrics, String series) {
        double max = Double.NEGATIVE_INFINITY;
        for (JsonNode point : metrics.path("series").path(series)) {
            if (!point.get(1).isNull()) {
                max = Math.max(max, point.get(1).asDouble());
            }
        }
        return max;
    }

    private static List<Long> times(JsonNode metrics, String series) {
        List<Long> out = new ArrayList<>();
        metrics.get("series").get(series).forEach(point -> out.add(point.get(0).asLong()));
        return out;
    }

    private static List<String> fieldNames(JsonNode node) {
        List<String> out = new ArrayList<>();
        node.fieldNames().forEachRemaining(out::add);
        return out;
    }
}
