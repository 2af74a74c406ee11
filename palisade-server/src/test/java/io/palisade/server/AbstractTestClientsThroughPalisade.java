package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.host.Processes;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Unmodified real clients against a full palisade, using only what the API returned: psql by hostname over the one TLS
 * port (verify-full with the generated CA), node-postgres in every routing form, and the Neon serverless driver over
 * HTTP and WebSocket through the broker. Plus the cross-tenant matrix on the wire. One subclass per rung: the clients
 * must not be able to tell the rungs apart.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class AbstractTestClientsThroughPalisade {
    private static final Path NODE_DIR = TestingDirectories.repoDir().resolve("clients/node");
    private TestingPalisade palisade;
    private JsonNode a;
    private JsonNode b;

    /** The rung both tenants of this class live on. */
    protected abstract String isolation();

    @BeforeAll
    void start() {
        palisade = new TestingPalisade();
        a = palisade.post("/v1/databases", "{\"label\":\"tenant-a\",\"isolation\":\"" + isolation() + "\"}").json();
        b = palisade.post("/v1/databases", "{\"label\":\"tenant-b\",\"isolation\":\"" + isolation() + "\"}").json();
        assertThat(a.path("isolation").asText()).as(a.toString()).isEqualTo(isolation());
    }

    @AfterAll
    void stop() {
        palisade.delete("/v1/databases/" + a.get("id").asText());
        palisade.delete("/v1/databases/" + b.get("id").asText());
        palisade.close();
    }

    private static Processes.Result psql(String url, String sql) {
        return Processes.run(List.of("psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql), Duration.ofSeconds(30), null);
    }

    @Test
    void psqlByHostnameWithVerifyFull() {
        String url = a.get("connection_url").asText();
        assertThat(url).startsWith("postgres://app:").contains("@" + a.get("id").asText() + ".db.localhost:")
                .contains("sslmode=verify-full").contains("sslrootcert=");
        Processes.Result result = psql(url, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
        assertThat(result.exitCode()).as(result.output()).isZero();
        JsonNode health = palisade.request("GET", "/v1/health", null, null).json();
        assertThat(health.path("proxy").path("ca_certificate").asText()).isNotEmpty();
        assertThat(Path.of(health.path("proxy").path("ca_certificate").asText())).exists();
    }

    @Test
    void crossTenantAttemptsLookLikeUnknownDatabases() {
        String aUrl = a.get("connection_url").asText();
        String bId = b.get("id").asText();
        String aId = a.get("id").asText();
        // A's credentials with B's hostname
        Processes.Result crossed = psql(aUrl.replace(aId + ".db.localhost", bId + ".db.localhost"), "SELECT 1");
        // A's credentials with a hostname that does not exist
        Processes.Result unknown = psql(aUrl.replace(aId + ".db.localhost", "db-nothere1.db.localhost"), "SELECT 1");
        assertThat(crossed.exitCode()).isNotZero();
        assertThat(unknown.exitCode()).isNotZero();
        assertThat(crossed.output()).contains("password authentication failed for user \"app\"");
        assertThat(stripHost(crossed.output(), bId)).isEqualTo(stripHost(unknown.output(), "db-nothere1"));
    }

    private static String stripHost(String output, String id) {
        return output.replace(id, "<id>").strip();
    }

    @Test
    void nodePostgresInEveryRoutingForm() {
        JsonNode conn = palisade.get("/v1/databases/" + a.get("id").asText() + "/connection").json();
        Processes.Result result = node(List.of("node", "proxy-clients.mjs"), Map.of(
                "PROXY_PORT", conn.get("port").asText(),
                "PROXY_CA", conn.get("ca_certificate").asText(),
                "PROXY_DOMAIN", "db.localhost",
                "DB_ID", a.get("id").asText(),
                "PGUSER", conn.get("username").asText(),
                "PGPASSWORD", conn.get("password").asText(),
                "PGDATABASE", conn.get("database").asText()));
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    @Test
    void neonServerlessDriverOverHttpAndWebSocket() {
        Processes.Result result = node(List.of("node", "--test", "broker-neon.test.mjs"), Map.of(
                "BROKER_PORT", Integer.toString(palisade.server().apiPort()),
                "DATABASE_URL", b.get("serverless_url").asText()));
        System.out.println(result.output());
        assertThat(result.exitCode()).as(result.output()).isZero();
        assertThat(result.output()).contains("# fail 0");
    }

    private static Processes.Result node(List<String> command, Map<String, String> env) {
        if (!Files.isDirectory(NODE_DIR.resolve("node_modules/pg"))) {
            throw new AssertionError("Node.js clients are not installed: run bin/setup (npm ci in clients/node)");
        }
        List<String> withEnv = new ArrayList<>(List.of("env"));
        env.forEach((k, v) -> withEnv.add(k + "=" + v));
        withEnv.add("sh");
        withEnv.add("-c");
        withEnv.add("cd '" + NODE_DIR + "' && exec \"$@\"");
        withEnv.add("node-runner");
        withEnv.addAll(command);
        return Processes.run(withEnv, Duration.ofMinutes(3), null);
    }
}
