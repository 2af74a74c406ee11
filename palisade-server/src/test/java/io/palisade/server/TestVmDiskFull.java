package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.host.Processes;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A vm tenant that fills its own volume gets "disk full" from its own PostgreSQL; a neighbour keeps answering during
 * the episode, and the tenant itself recovers once it frees space. The volume is the tenant's, never the host's.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestVmDiskFull {
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
    void fillingTheVolumeHurtsOnlyTheTenant() throws Exception {
        JsonNode filler = palisade.post("/v1/databases",
                "{\"label\":\"filler\",\"isolation\":\"vm\",\"suspend_after_seconds\":\"never\"}").json();
        JsonNode neighbour = palisade.post("/v1/databases", "{\"label\":\"neighbour\"}").json();
        AtomicBoolean running = new AtomicBoolean(true);
        AtomicInteger neighbourOk = new AtomicInteger();
        AtomicInteger neighbourFailed = new AtomicInteger();
        Thread queries = Thread.ofVirtual().name("neighbour-queries").start(() -> {
            while (running.get()) {
                try (Connection c = PgUrls.connect(neighbour.get("connection_url").asText());
                        Statement s = c.createStatement()) {
                    while (running.get()) {
                        try (ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_class")) {
                            rs.next();
                            neighbourOk.incrementAndGet();
                        }
                        Processes.sleep(Duration.ofMillis(50));
                    }
                } catch (SQLException e) {
                    neighbourFailed.incrementAndGet();
                }
            }
        });
        String sqlState = null;
        int batches = 0;
        try (Connection c = PgUrls.connect(filler.get("connection_url").asText()); Statement s = c.createStatement()) {
            // 100 MB per batch: 8 KB values stored out of line and uncompressed (STORAGE EXTERNAL), unlogged so only
            // the data files grow; cheap to produce, which matters when every guest instruction is emulated (TCG)
            s.execute("CREATE UNLOGGED TABLE fill (v text)");
            s.execute("ALTER TABLE fill ALTER COLUMN v SET STORAGE EXTERNAL");
            for (; batches < 40 && sqlState == null; batches++) {
                try {
                    s.execute("INSERT INTO fill SELECT repeat('x', 8000) FROM generate_series(1, 12800) g");
                } catch (SQLException e) {
                    sqlState = e.getSQLState();
                }
            }
            running.set(false);
            queries.join(Duration.ofSeconds(30));
            System.out.printf("disk full after %d batches of ~100 MB: SQLSTATE %s; neighbour %d ok, %d failed%n",
                    batches, sqlState, neighbourOk.get(), neighbourFailed.get());
            assertThat(sqlState).as("the tenant's own PostgreSQL reports disk full").isEqualTo("53100");
            assertThat(neighbourOk.get()).isPositive();
            assertThat(neighbourFailed.get()).isZero();
            // the tenant recovers by freeing space
            s.execute("DROP TABLE fill");
            s.execute("CREATE TABLE after_full (v int)");
            s.execute("INSERT INTO after_full VALUES (1)");
            try (ResultSet rs = s.executeQuery("SELECT count(*) FROM after_full")) {
                rs.next();
                assertThat(rs.getInt(1)).isEqualTo(1);
            }
        } finally {
            running.set(false);
            palisade.delete("/v1/databases/" + filler.get("id").asText());
            palisade.delete("/v1/databases/" + neighbour.get("id").asText());
        }
    }
}
