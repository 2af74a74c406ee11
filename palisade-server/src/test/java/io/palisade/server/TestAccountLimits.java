package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.Map;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * What one account may take (quotas) and see ({@code /metrics}) on a real server with the process rung: a tenant's key
 * gets neither another account's database ids nor more than its share.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestAccountLimits {
    private static final String METRICS_TOKEN = "mt_" + "0123456789abcdef0123";

    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = new TestingPalisade(Map.of(
                "quota.databases", "2",
                "quota.cpu-per-database", "2",
                "quota.memory-mb-total", "640",
                "metrics.token", METRICS_TOKEN));
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.close();
        }
    }

    @Test
    void quotasRefuseCreatesAndMovesBeyondThemPerAccount() {
        String key = palisade.newAccount("quota");
        String neighbour = palisade.newAccount("quota-neighbour");
        TestingPalisade.Response first = create(key, "{\"isolation\":\"process\",\"label\":\"first\"}");
        assertThat(first.status()).as(first.body()).isEqualTo(201);
        String id = first.json().get("id").asText();

        assertQuota(create(key, "{\"isolation\":\"process\",\"cpu\":3}"), "quota.cpu-per-database");
        // 256 MB held + 512 MB asked > 640 MB
        assertQuota(create(key, "{\"isolation\":\"process\",\"memory_mb\":512}"), "quota.memory-mb-total");
        TestingPalisade.Response second = create(key, "{\"isolation\":\"process\",\"label\":\"second\"}");
        assertThat(second.status()).as(second.body()).isEqualTo(201);
        assertQuota(create(key, "{\"isolation\":\"process\",\"label\":\"third\"}"), "quota.databases");
        assertThat(palisade.request("GET", "/v1/databases", null, key).json().get("databases").size()).isEqualTo(2);

        // a move to a plan beyond the per-database quota is refused before anything is copied
        TestingPalisade.Response move = palisade.request("POST", "/v1/databases/" + id + "/isolation",
                "{\"isolation\":\"schema\",\"cpu\":4}", key);
        assertQuota(move, "quota.cpu-per-database");

        // quotas are per account: the neighbour still creates
        TestingPalisade.Response theirs = create(neighbour, "{\"isolation\":\"process\"}");
        assertThat(theirs.status()).as(theirs.body()).isEqualTo(201);
    }

    @Test
    void metricsNeedAKeyAndShowDatabaseIdsOnlyToTheOperator() {
        String key = palisade.newAccount("metrics");
        TestingPalisade.Response created = create(key, "{\"isolation\":\"process\",\"label\":\"scraped\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        String id = created.json().get("id").asText();
        // the archive's per-database series appear within a refresh
        Awaitility.await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofSeconds(1)).untilAsserted(() ->
                assertThat(palisade.request("GET", "/metrics", null, METRICS_TOKEN).body())
                        .contains("database=\"" + id + "\""));

        TestingPalisade.Response anonymous = palisade.request("GET", "/metrics", null, null);
        assertThat(anonymous.status()).isEqualTo(401);
        assertThat(anonymous.contentType()).startsWith("application/problem+json");
        assertThat(anonymous.body()).doesNotContain(id).doesNotContain("palisade_");

        TestingPalisade.Response wrong = palisade.request("GET", "/metrics", null, "pk_not-a-key-0123456789");
        assertThat(wrong.status()).isEqualTo(401);

        TestingPalisade.Response tenant = palisade.request("GET", "/metrics", null, key);
        assertThat(tenant.status()).isEqualTo(200);
        assertThat(tenant.body()).contains("palisade_databases{").doesNotContain(id).doesNotContain("database=\"");

        assertThat(palisade.get("/metrics").body()).as("the admin key sees every series")
                .contains("database=\"" + id + "\"");
    }

    private TestingPalisade.Response create(String key, String body) {
        return palisade.request("POST", "/v1/databases", body, key);
    }

    private static void assertQuota(TestingPalisade.Response response, String configKey) {
        assertThat(response.status()).as(response.body()).isEqualTo(403);
        assertThat(response.contentType()).startsWith("application/problem+json");
        JsonNode problem = response.json();
        assertThat(problem.get("code").asText()).isEqualTo("quota-exceeded");
        assertThat(problem.get("detail").asText()).contains(configKey);
    }
}
