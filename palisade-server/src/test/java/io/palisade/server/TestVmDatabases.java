package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.host.Processes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The vm rung through the public API: {@code POST /v1/databases {"isolation":"vm"}} gives a database in its own
 * microVM (TCG on machines without hardware virtualisation), psql works with the returned URL, data survives a restart
 * of palisade, delete leaves no VM, namespace or volume.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestVmDatabases {
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = TestingPalisade.requiring("vm", Map.of());
    }

    @AfterAll
    void stop() {
        palisade.close();
    }

    @Test
    void vmDatabaseEndToEnd() throws Exception {
        TestingPalisade.Response created = palisade.post("/v1/databases", "{\"label\":\"vm-tenant\",\"isolation\":\"vm\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        JsonNode db = created.json();
        String id = db.get("id").asText();
        assertThat(db.get("isolation").asText()).isEqualTo("vm");
        String url = db.get("connection_url").asText();

        Processes.Result psql = Processes.run(List.of("psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c",
                        "CREATE TABLE t (v text); INSERT INTO t VALUES ('in a microvm'); SELECT v FROM t;"),
                Duration.ofSeconds(60), null);
        assertThat(psql.exitCode()).as(psql.output()).isZero();
        assertThat(psql.output().strip()).isEqualTo("in a microvm");
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement()) {
            try (ResultSet rs = s.executeQuery("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")) {
                rs.next();
                assertThat(rs.getBoolean(1)).isFalse();
            }
        }
        JsonNode stats = palisade.get("/v1/databases/" + id + "/stats").json();
        assertThat(stats.get("running").asBoolean()).isTrue();
        long qemuPid = stats.get("pid").asLong();
        assertThat(ProcessHandle.of(qemuPid).flatMap(p -> p.info().command()).orElse("")).contains("qemu-system");

        palisade.restart();
        JsonNode conn = palisade.get("/v1/databases/" + id + "/connection").json();
        assertThat(conn.get("status").asText()).isEqualTo("running");
        try (Connection c = PgUrls.connect(conn.get("connection_url").asText());
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT v FROM t")) {
            assertThat(rs.next()).isTrue();
            assertThat(rs.getString(1)).isEqualTo("in a microvm");
        }

        long pidAfter = palisade.get("/v1/databases/" + id + "/stats").json().get("pid").asLong();
        Path instanceDir = palisade.dataDir().resolve("vm").resolve(id);
        assertThat(instanceDir).exists();
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
        assertThat(Files.exists(instanceDir)).isFalse();
        assertThat(ProcessHandle.of(pidAfter).map(ProcessHandle::isAlive).orElse(false)).isFalse();
        Processes.Result netns = Processes.run(List.of("ip", "netns", "list"), Duration.ofSeconds(5), null);
        assertThat(netns.output()).doesNotContain(id);
    }
}
