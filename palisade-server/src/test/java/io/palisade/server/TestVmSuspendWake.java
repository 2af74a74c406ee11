package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.agent.AdminConnection;
import io.palisade.host.Processes;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Scale to zero through the public surfaces: a vm database is suspended (by the API and by the idle timer), costs no
 * QEMU process while suspended, and the next connection through the proxy wakes it — concurrent first connections
 * wake it once — with its data intact.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestVmSuspendWake {
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = TestingPalisade.requiring("vm", Map.of("agent.reconcile-interval", "1s", "backup.start-delay", "5s"));
    }

    @AfterAll
    void stop() {
        palisade.close();
    }

    private static Processes.Result psql(String url, String sql) {
        return Processes.run(List.of("psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql), Duration.ofSeconds(120), null);
    }

    @Test
    void suspendThenWakeOnConnect() throws Exception {
        JsonNode db = palisade.post("/v1/databases", "{\"label\":\"sleepy\",\"isolation\":\"vm\",\"suspend_after_seconds\":\"never\"}").json();
        String id = db.get("id").asText();
        String url = db.get("connection_url").asText();
        try {
            assertThat(psql(url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)").exitCode()).isZero();
            long qemuPid = palisade.get("/v1/databases/" + id + "/stats").json().get("pid").asLong();
            // an archive that holds WAL (a new one connects at once: no slot keeps its WAL before that)
            await("the archive holds WAL").atMost(Duration.ofSeconds(60)).until(() -> !palisade.get("/v1/databases/"
                    + id + "/backups").json().path("archive").path("archived_lsn").asText("0/0").equals("0/0"));

            TestingPalisade.Response suspended = palisade.post("/v1/databases/" + id + "/suspend", null);
            assertThat(suspended.status()).as(suspended.body()).isEqualTo(200);
            assertThat(suspended.json().get("status").asText()).isEqualTo("suspended");
            assertThat(ProcessHandle.of(qemuPid).map(ProcessHandle::isAlive).orElse(false))
                    .as("no QEMU process while suspended").isFalse();

            long wakesBefore = palisade.server().service().wakeCount();
            double firstClientStart = Double.MAX_VALUE;
            var pool = Executors.newFixedThreadPool(3);
            try {
                List<CompletableFuture<Processes.Result>> clients = List.of(1, 2, 3).stream()
                        .map(i -> CompletableFuture.supplyAsync(() -> psql(url, "SELECT v, extract(epoch FROM"
                                + " backend_start) FROM kept, pg_stat_activity WHERE pid = pg_backend_pid()"), pool))
                        .toList();
                for (CompletableFuture<Processes.Result> client : clients) {
                    Processes.Result result = client.join();
                    assertThat(result.exitCode()).as(result.output()).isZero();
                    String[] row = result.output().strip().split("\\|");
                    assertThat(row[0]).isEqualTo("7");
                    firstClientStart = Math.min(firstClientStart, Double.parseDouble(row[1]));
                }
            } finally {
                pool.shutdownNow();
            }
            assertThat(palisade.server().service().wakeCount() - wakesBefore).as("woken exactly once").isEqualTo(1);
            assertThat(palisade.get("/v1/databases/" + id).json().get("status").asText()).isEqualTo("running");
            // the woken guest served its first clients before the archiver connected: backup.start-delay (5 s) after
            // the wake, which is well after the clients' backends started (even under TCG on a busy host)
            double clientStart = firstClientStart;
            await("the archiver reconnects after the wake").atMost(Duration.ofSeconds(60))
                    .pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
                        try (Connection admin = AdminConnection.open(palisade.server().service().adminAccess(id),
                                "postgres");
                                Statement s = admin.createStatement();
                                ResultSet rs = s.executeQuery("SELECT extract(epoch FROM backend_start)"
                                        + " FROM pg_stat_activity WHERE application_name = 'palisade_archiver'")) {
                            assertThat(rs.next()).as("an archiver connection").isTrue();
                            assertThat(rs.getDouble(1) - clientStart).as("seconds from the first client's backend to"
                                    + " the archiver's").isGreaterThan(2.0);
                        }
                    });
        } finally {
            palisade.delete("/v1/databases/" + id);
        }
    }

    /**
     * A client that connects while its database is being suspended waits for the suspend, then wakes the database: it
     * is not let through to a guest about to be saved, where its session would freeze until some later wake. The
     * guest's postmaster is stopped for 3 s of guest time first, so the suspend's probe keeps the suspend going for
     * over a second.
     */
    @Test
    void aClientArrivingDuringASuspendWaitsAndWakesTheDatabase() throws Exception {
        JsonNode db = palisade.post("/v1/databases", "{\"label\":\"held\",\"isolation\":\"vm\","
                + "\"suspend_after_seconds\":\"never\"}").json();
        String id = db.get("id").asText();
        String url = db.get("connection_url").asText();
        try {
            assertThat(psql(url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)").exitCode()).isZero();
            try (Connection admin = AdminConnection.open(palisade.server().service().adminAccess(id), "postgres");
                    Statement s = admin.createStatement()) {
                String dataDir;
                try (ResultSet rs = s.executeQuery("SHOW data_directory")) {
                    rs.next();
                    dataDir = rs.getString(1);
                }
                String pid = "$(head -1 " + dataDir + "/postmaster.pid)";
                s.execute("COPY (SELECT 1) TO PROGRAM 'P=" + pid + "; setsid sh -c \"kill -STOP $P; sleep 3;"
                        + " kill -CONT $P\" </dev/null >/dev/null 2>&1 &'");
                s.execute("CREATE TEMP TABLE state (s text)");
                await("the postmaster is stopped").atMost(Duration.ofSeconds(2)).pollInterval(Duration.ofMillis(20))
                        .until(() -> {
                            s.execute("TRUNCATE state; COPY state FROM PROGRAM 'cut -d\" \" -f3 /proc/" + pid
                                    + "/stat'");
                            try (ResultSet rs = s.executeQuery("SELECT s FROM state")) {
                                return rs.next() && rs.getString(1).equals("T");
                            }
                        });
            }
            long wakesBefore = palisade.server().service().wakeCount();
            CompletableFuture<TestingPalisade.Response> suspend =
                    CompletableFuture.supplyAsync(() -> palisade.post("/v1/databases/" + id + "/suspend", null));
            // the client must come while the suspend holds new connections, not before it took the hold
            await("the suspend holds new connections").atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(10))
                    .until(() -> palisade.server().service().connectionsHeld(id) || suspend.isDone());
            assertThat(suspend).as("the suspend is still probing the stopped postmaster").isNotDone();
            Processes.Result client = psql(url, "SELECT v FROM kept");
            assertThat(client.exitCode()).as(client.output()).isZero();
            assertThat(client.output().strip()).isEqualTo("7");
            TestingPalisade.Response suspended = suspend.join();
            assertThat(suspended.status()).as(suspended.body()).isEqualTo(200);
            assertThat(palisade.server().service().wakeCount() - wakesBefore).as("woken once, after the suspend")
                    .isEqualTo(1);
            assertThat(palisade.get("/v1/databases/" + id).json().get("status").asText()).isEqualTo("running");
        } finally {
            palisade.delete("/v1/databases/" + id);
        }
    }

    @Test
    void idleDatabasesAreSuspendedAndPersistentOnesNeverDeleted() throws Exception {
        JsonNode db = palisade.post("/v1/databases", "{\"label\":\"idle\",\"isolation\":\"vm\",\"suspend_after_seconds\":10}").json();
        String id = db.get("id").asText();
        try {
            long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
            String status = "";
            while (System.nanoTime() < deadline && !status.equals("suspended")) {
                Processes.sleep(Duration.ofSeconds(1));
                status = palisade.get("/v1/databases/" + id).json().get("status").asText();
            }
            assertThat(status).isEqualTo("suspended");
            try (Connection c = PgUrls.connect(db.get("connection_url").asText());
                    Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT 42")) {
                rs.next();
                assertThat(rs.getInt(1)).isEqualTo(42);
            }
            assertThat(palisade.get("/v1/databases/" + id).json().get("status").asText()).isEqualTo("running");
        } finally {
            palisade.delete("/v1/databases/" + id);
        }
    }

    @Test
    void processDatabasesCannotBeSuspended() {
        JsonNode db = palisade.post("/v1/databases", "{\"label\":\"proc\",\"isolation\":\"process\"}").json();
        try {
            TestingPalisade.Response refused = palisade.post("/v1/databases/" + db.get("id").asText() + "/suspend", null);
            assertThat(refused.status()).isEqualTo(409);
            assertThat(refused.json().get("detail").asText()).contains("cannot suspend");
            TestingPalisade.Response invalid = palisade.post("/v1/databases",
                    "{\"isolation\":\"process\",\"suspend_after_seconds\":60}");
            assertThat(invalid.status()).isEqualTo(400);
        } finally {
            palisade.delete("/v1/databases/" + db.get("id").asText());
        }
    }
}
