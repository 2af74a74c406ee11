package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.host.Processes;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * SIGKILL of a tenant's instance (its postmaster on the process rung, its QEMU process on the vm rung) while a client
 * writes with synchronous commit: palisade restarts it by itself and every acknowledged commit is present afterwards.
 * Counted over several trials.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestInstanceCrashRecovery {
    private static final int TRIALS = 3;
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = new TestingPalisade(Map.of("agent.reconcile-interval", "500ms"));
    }

    @AfterAll
    void stop() {
        palisade.close();
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"process", "vm"})
    void acknowledgedCommitsSurviveSigkill(String isolation) throws Exception {
        palisade.requireUsable(isolation);
        JsonNode db = palisade.post("/v1/databases",
                "{\"label\":\"crashy\",\"isolation\":\"" + isolation + "\",\"suspend_after_seconds\":"
                        + (isolation.equals("vm") ? "\"never\"" : "null") + "}").json();
        assertThat(db.path("status").asText()).as(db.toString()).isEqualTo("running");
        String id = db.get("id").asText();
        String url = db.get("connection_url").asText();
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE ledger (id bigint PRIMARY KEY)");
            try (ResultSet rs = s.executeQuery("SHOW synchronous_commit")) {
                rs.next();
                assertThat(rs.getString(1)).isEqualTo("on");
            }
        }
        Set<Long> acknowledged = ConcurrentHashMap.newKeySet();
        AtomicInteger failures = new AtomicInteger();
        int totalRecoveries = 0;
        for (int trial = 0; trial < TRIALS; trial++) {
            AtomicBoolean running = new AtomicBoolean(true);
            long base = trial * 1_000_000L;
            Thread writer = Thread.ofVirtual().name("ledger-writer-" + trial).start(() -> {
                long next = base;
                while (running.get()) {
                    try (Connection c = PgUrls.connect(url);
                            PreparedStatement insert = c.prepareStatement("INSERT INTO ledger VALUES (?)")) {
                        while (running.get()) {
                            insert.setLong(1, next);
                            insert.executeUpdate();
                            acknowledged.add(next);
                            next++;
                        }
                    } catch (SQLException e) {
                        failures.incrementAndGet();
                        next++; // the unacknowledged id may or may not be there; never reuse it
                        Processes.sleep(Duration.ofMillis(50));
                    }
                }
            });
            int before = acknowledged.size();
            org.awaitility.Awaitility.await("50 acknowledged writes before the kill").atMost(Duration.ofSeconds(30))
                    .pollInterval(Duration.ofMillis(20)).until(() -> acknowledged.size() >= before + 50);
            // a backend connection parked in the proxy's pool (a login the writer never makes, so only the restart
            // can end it): a killed VM's connections never close by themselves, and a client handed one would wait
            try (Connection parked = PgUrls.connect(url + (url.contains("?") ? "&" : "?")
                    + "ApplicationName=parked-before-the-crash&assumeMinServerVersion=16");
                    Statement s = parked.createStatement()) {
                s.execute("SELECT 1");
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> palisade.server().proxyIdleBackends(id) > 0);
            long pid = palisade.server().service().stats("acct-admin", id).pid();
            assertThat(pid).isPositive();
            Processes.check(List.of("kill", "-KILL", Long.toString(pid)), Duration.ofSeconds(5));
            int atKill = acknowledged.size();
            // recovery: a new instance answers without anyone calling the API (backends of a SIGKILLed postmaster can
            // keep serving an open connection for a moment, so wait for a new instance, not just for more writes)
            long deadline = System.nanoTime() + Duration.ofSeconds(180).toNanos();
            boolean recovered = false;
            int parkedAtRestart = -1;
            while (!recovered && System.nanoTime() < deadline) {
                var stats = palisade.server().service().stats("acct-admin", id);
                if (stats.running() && stats.pid() != pid) {
                    if (parkedAtRestart < 0) {
                        parkedAtRestart = palisade.server().proxyIdleBackends(id);
                    }
                    try (Connection fresh = PgUrls.connect(url)) {
                        recovered = fresh.isValid(5);
                    } catch (SQLException e) {
                        // not yet
                    }
                }
                if (!recovered) {
                    Processes.sleep(Duration.ofMillis(50));
                }
            }
            assertThat(recovered).as("%s instance recovered by itself in trial %d", isolation, trial).isTrue();
            assertThat(parkedAtRestart).as("backends parked before the kill, once the instance is restarted").isZero();
            int atRecovery = acknowledged.size();
            org.awaitility.Awaitility.await("50 writes after the recovery").atMost(Duration.ofSeconds(60))
                    .pollInterval(Duration.ofMillis(20)).until(() -> acknowledged.size() >= atRecovery + 50);
            running.set(false);
            writer.join(Duration.ofSeconds(30));
            assertThat(acknowledged.size()).as("writes resumed after recovery in trial %d", trial)
                    .isGreaterThanOrEqualTo(atRecovery + 50)
                    .isGreaterThan(atKill);
            totalRecoveries++;
        }
        try (Connection c = PgUrls.connect(url);
                PreparedStatement select = c.prepareStatement("SELECT count(*) FROM ledger WHERE id = ANY (?)")) {
            select.setArray(1, c.createArrayOf("bigint", acknowledged.toArray()));
            try (ResultSet rs = select.executeQuery()) {
                rs.next();
                System.out.printf("crash recovery (%s): %d trials, %d acknowledged commits, %d present, %d client errors%n",
                        isolation, totalRecoveries, acknowledged.size(), rs.getLong(1), failures.get());
                assertThat(rs.getLong(1)).as("acknowledged commits present").isEqualTo(acknowledged.size());
            }
        }
        assertThat(failures.get()).as("the kills were noticed by the client").isPositive();
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
    }
}
