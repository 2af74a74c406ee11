package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.agent.AdminConnection;
import io.palisade.host.Processes;
import io.palisade.logical.Fingerprint;
import io.palisade.spi.Rung;
import io.palisade.spi.TenantPlace;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What every move test needs: a palisade, databases created through the API, a move started and followed to its end,
 * the tenant's fingerprint (structure and data, read as the server's superuser) and the check that a continuous
 * writer's acknowledged commits are all there exactly once.
 */
@org.junit.jupiter.api.TestInstance(org.junit.jupiter.api.TestInstance.Lifecycle.PER_CLASS)
abstract class AbstractTestMoves {
    protected TestingPalisade palisade;

    /**
     * The rung the class's palisade must be able to run (the class fails in CI and is skipped, saying why, elsewhere
     * when it cannot); {@code null}: the class starts its palisades itself.
     */
    protected String requiredRung() {
        return "process";
    }

    @org.junit.jupiter.api.BeforeAll
    void openPalisade() {
        if (requiredRung() != null) {
            palisade = TestingPalisade.requiring(requiredRung(), java.util.Map.of("agent.reconcile-interval", "500ms"));
        }
    }

    @org.junit.jupiter.api.AfterAll
    void closePalisade() {
        if (palisade != null) {
            palisade.close();
            palisade = null;
        }
    }

    protected JsonNode create(String label, Rung rung) {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"" + label + "\",\"isolation\":\"" + rung.wireName() + "\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        return created.json();
    }

    /** Starts a move (202) and waits for its end; returns the finished move. */
    protected JsonNode move(String id, Rung to, Duration timeout) {
        TestingPalisade.Response started = palisade.post("/v1/databases/" + id + "/isolation",
                "{\"isolation\":\"" + to.wireName() + "\"}");
        assertThat(started.status()).as(started.body()).isEqualTo(202);
        assertThat(started.json().path("to").asText()).isEqualTo(to.wireName());
        return awaitMoveEnd(id, timeout);
    }

    protected JsonNode awaitMoveEnd(String id, Duration timeout) {
        JsonNode[] last = new JsonNode[1];
        await("the move of " + id).atMost(timeout).pollInterval(Duration.ofMillis(200)).until(() -> {
            TestingPalisade.Response move = palisade.get("/v1/databases/" + id + "/move");
            assertThat(move.status()).as(move.body()).isEqualTo(200);
            last[0] = move.json();
            return last[0].path("finished").asBoolean();
        });
        return last[0];
    }

    protected JsonNode database(String id) {
        TestingPalisade.Response db = palisade.get("/v1/databases/" + id);
        assertThat(db.status()).as(db.body()).isEqualTo(200);
        return db.json();
    }

    /** The tenant's objects and data as its server's superuser sees them (names of namespace and role neutralised). */
    protected Fingerprint fingerprint(String id) {
        TenantPlace place = palisade.server().service().tenantPlace(id);
        try (Connection c = AdminConnection.open(place.admin(), place.database())) {
            return Fingerprint.of(c, place.namespace(), place.role());
        } catch (SQLException e) {
            throw new AssertionError(e);
        }
    }

    /** Every acknowledged commit is in {@code writes} exactly once. */
    protected static void assertAllAcknowledgedPresentOnce(String url, ContinuousWriter writer) throws SQLException {
        Set<Long> acknowledged = writer.acknowledged();
        Set<Long> present = new HashSet<>();
        long rows = 0;
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("select n from writes")) {
            while (rs.next()) {
                rows++;
                present.add(rs.getLong(1));
            }
        }
        assertThat(rows).as("no commit applied twice").isEqualTo(present.size());
        Set<Long> missing = new HashSet<>(acknowledged);
        missing.removeAll(present);
        assertThat(missing).as("acknowledged commits missing after the move (of %d)", acknowledged.size()).isEmpty();
    }

    protected static String id(JsonNode db) {
        return db.get("id").asText();
    }

    protected static String url(JsonNode db) {
        return db.get("connection_url").asText();
    }

    protected static void psqlFile(String url, java.nio.file.Path file) {
        Processes.Result result = Processes.run(List.of("psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-f",
                file.toString()), Duration.ofMinutes(2), null);
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    protected static String scalar(String url, String sql) throws SQLException {
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(sql)) {
            assertThat(rs.next()).as("a row from %s", sql).isTrue();
            return rs.getString(1);
        }
    }

    protected static void execute(String url, String sql) throws SQLException {
        BackupChecks.execute(url, sql);
    }
}
