package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.agent.AdminConnection;
import io.palisade.host.PostgresServer;
import io.palisade.host.Processes;
import io.palisade.pgwire.Sql;
import io.palisade.spi.Rung;
import io.palisade.spi.TenantPlace;
import io.palisade.store.SecretBox;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Faults during a move between the host rungs (issue 13): {@code palisade serve} SIGKILLed mid-copy and mid-cutover,
 * the target's postmaster SIGKILLed mid-copy, the target's disk full during the copy. In every case the tenant runs
 * afterwards on its source rung alone, takes writes, and has every commit a continuous writer was told about; the move
 * says failed; nothing is orphaned: no instance of the tenant on the target rung, no {@code palisade_move_} login,
 * publication, subscription or slot on the source server, the tenant's LOGIN back, and a table without primary key
 * with its replica identity as before.
 *
 * <p>All cases share one data directory, so PostgreSQL's binaries and templates are laid out once. Where palisade must
 * be SIGKILLed it runs in its own JVM ({@link TestingPalisadeProcess}); the checks, and the faults that leave palisade
 * alone, run in this JVM on the same directory ({@link TestingPalisade#onDataDir}), which takes over what a killed
 * palisade left, as its restart on the host would.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestMoveFaults extends AbstractTestMoves {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Duration MOVE_TIMEOUT = Duration.ofMinutes(2);
    private static final Map<String, String> SETTINGS = Map.of("agent.reconcile-interval", "1s");
    /** Rows of ~330 bytes in {@code big}: ~100 MB, whose copy takes seconds. */
    private static final int BIG_ROWS = 300_000;
    /** The file system the disk-full case gives the process rung: the instance template (~46 MB) and a little more. */
    private static final String SMALL_DISK = "96m";

    private final String key = "pk_move_faults_" + SecretBox.randomSecret(24);
    private final HttpClient http = HttpClient.newHttpClient();
    private Path work;
    private Path dataDir;

    @Override
    protected String requiredRung() {
        return null; // each case starts (and kills) its own
    }

    @BeforeAll
    void createWorkDir() {
        work = TestingDirectories.newWorkDir("move-faults");
        dataDir = work.resolve("data");
    }

    @AfterEach
    void stopPalisade() {
        if (palisade != null) {
            palisade.close();
            palisade = null;
        }
    }

    @AfterAll
    void removeWorkDir() {
        // what a failed test may have left: the servers of a killed palisade serve, the disk case's file system
        for (long pid : TestControlPlaneCrash.postgresProcessesUnder(dataDir)) {
            Processes.signal(pid, "KILL");
        }
        unmount(processInstances());
        TestingDirectories.deleteRecursively(work);
    }

    @Test
    void killingServeMidCopyUndoesTheMove() throws Exception {
        String id;
        ContinuousWriter writer;
        try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
            JsonNode db = call(serve, "POST", "/v1/databases", "{\"label\":\"kill-copy\",\"isolation\":\"process\"}",
                    201);
            id = id(db);
            seed(url(db), BIG_ROWS);
            writer = new ContinuousWriter(url(db));
            try {
                writer.awaitMore(20, Duration.ofSeconds(30));
                call(serve, "POST", "/v1/databases/" + id + "/isolation", "{\"isolation\":\"database\"}", 202);
                JsonNode copying = awaitMove(serve, id, move -> move.path("copied_bytes").asLong() > 0);
                serve.kill();
                System.out.printf("killed palisade serve mid-copy: %s%n", copying);
                assertThat(copying.path("phase").asText()).isEqualTo("copying");
                assertThat(copying.path("copied_bytes").asLong()).as("killed mid-copy: %s", copying)
                        .isLessThan(copying.path("total_bytes").asLong());
            } finally {
                writer.close();
            }
        }
        palisade = TestingPalisade.onDataDir(dataDir, key, SETTINGS);
        assertUndone(id, Rung.PROCESS, writer, "palisade stopped during the copying phase");
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
    }

    /**
     * Killed with the tenant's LOGIN taken away on the source and connections held: the cutover is made to wait for
     * the last changes by locking the target's copy of the table the writer writes (the change stream cannot apply
     * what the writer commits from then on), so the kill lands there every time, not by luck of timing.
     */
    @Test
    void killingServeMidCutoverUndoesTheMove() throws Exception {
        String id;
        ContinuousWriter writer;
        try (TestingPalisadeProcess serve = new TestingPalisadeProcess(dataDir, key)) {
            JsonNode db = call(serve, "POST", "/v1/databases",
                    "{\"label\":\"kill-cutover\",\"isolation\":\"database\"}", 201);
            id = id(db);
            seed(url(db), 1000);
            writer = new ContinuousWriter(url(db));
            try (Connection idle = PgUrls.connect(url(db))) {
                // a session idle in a transaction that has no transaction id (the copy's slots need not wait for it):
                // the cutover waits its whole drain period for it, so the lock below comes before the writer's end
                idle.setAutoCommit(false);
                strings(idle, "select 1");
                writer.awaitMore(20, Duration.ofSeconds(30));
                call(serve, "POST", "/v1/databases/" + id + "/isolation", "{\"isolation\":\"process\"}", 202);
                try (Connection target = awaitTargetReady(serve, id); Statement s = target.createStatement()) {
                    target.setAutoCommit(false);
                    s.execute("set local lock_timeout = '10s'");
                    // within the cutover's drain (a second: the idle transaction above), so that the cutover has
                    // begun (it waits for a copy that keeps pace) and its catch-up then waits for this lock
                    awaitMove(serve, id, move -> move.path("phase").asText().equals("cutover"));
                    s.execute("lock table public.writes in access exclusive mode");
                    JsonNode cutover = awaitMove(serve, id,
                            move -> move.path("detail").asText().startsWith("waiting for the last changes"));
                    serve.kill();
                    System.out.printf("killed palisade serve mid-cutover: %s%n", cutover);
                    assertThat(cutover.path("phase").asText()).isEqualTo("cutover");
                }
            } finally {
                writer.close();
            }
        }
        palisade = TestingPalisade.onDataDir(dataDir, key, SETTINGS);
        assertUndone(id, Rung.DATABASE, writer, "palisade stopped during the cutover phase");
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
    }

    /**
     * A target that dies mid-copy fails the move (nothing restarts a target that holds no tenant yet, and a retry of
     * the move starts it afresh); the tenant keeps writing to its source throughout.
     */
    @Test
    void killingTheTargetMidCopyFailsTheMove() throws Exception {
        palisade = TestingPalisade.onDataDir(dataDir, key, SETTINGS);
        JsonNode db = create("kill-target", Rung.DATABASE);
        String id = id(db);
        seed(url(db), BIG_ROWS);
        try (ContinuousWriter writer = new ContinuousWriter(url(db))) {
            writer.awaitMore(20, Duration.ofSeconds(30));
            startMove(id, Rung.PROCESS);
            await("the copy of " + id).atMost(MOVE_TIMEOUT).pollInterval(Duration.ofMillis(50)).until(
                    () -> palisade.get("/v1/databases/" + id + "/move").json().path("copied_bytes").asLong() > 0);
            long postmaster = postmasterPid(processInstances().resolve(id).resolve("data"));
            assertThat(Processes.signal(postmaster, "KILL")).isTrue();
            JsonNode move = awaitMoveEnd(id, MOVE_TIMEOUT);
            System.out.printf("target killed mid-copy: %s%n", move);
            writer.awaitMore(20, Duration.ofSeconds(30));
            writer.close();
            assertUndone(id, Rung.DATABASE, writer, "stays on database");
        }
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
    }

    /**
     * The process rung has no disk cap of its own (it shares the host's file system), so its instances get a small file
     * system of their own here, which the copy fills.
     */
    @Test
    void fillingTheTargetsDiskFailsTheMove() throws Exception {
        palisade = TestingPalisade.onDataDir(dataDir, key, SETTINGS);
        JsonNode db = create("disk-full", Rung.DATABASE);
        String id = id(db);
        seed(url(db), BIG_ROWS);
        Path instances = processInstances();
        assertThat(children(instances)).as("no process instance but the target will be on the small disk").isEmpty();
        Processes.Result mounted = Processes.run(List.of("mount", "-t", "tmpfs", "-o", "size=" + SMALL_DISK
                + ",mode=755", "tmpfs", instances.toString()), Duration.ofSeconds(10), null);
        if (mounted.exitCode() != 0) {
            String reason = "cannot mount a small file system for the process rung: " + mounted.output().strip();
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError(reason);
            }
            System.out.println("SKIPPED (" + reason + ")");
            org.junit.jupiter.api.Assumptions.abort(reason);
        }
        try (ContinuousWriter writer = new ContinuousWriter(url(db))) {
            writer.awaitMore(20, Duration.ofSeconds(30));
            JsonNode move = move(id, Rung.PROCESS, MOVE_TIMEOUT);
            System.out.printf("target disk full: %s%n", move);
            writer.awaitMore(20, Duration.ofSeconds(30));
            writer.close();
            // the host's file system under the target's volume images filled: ENOSPC inside, or the volume's writes
            // failing below ext4, which then goes read-only
            assertUndone(id, Rung.DATABASE, writer, "No space left on device", "Read-only file system");
            assertThat(children(instances)).as("the small disk after the move").isEmpty();
        } finally {
            unmount(instances);
        }
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
    }

    /**
     * The move failed (the detail says one of {@code reasons}) and left nothing: the tenant runs on {@code on} alone with every
     * acknowledged commit and takes writes; no palisade_move_ object is on its server; its LOGIN is back; {@code nopk}
     * has its replica identity as before.
     */
    private void assertUndone(String id, Rung on, ContinuousWriter writer, String... reasons) throws SQLException {
        TestingPalisade.Response latest = palisade.get("/v1/databases/" + id + "/move");
        assertThat(latest.status()).as(latest.body()).isEqualTo(200);
        JsonNode move = latest.json();
        assertThat(move.path("phase").asText()).as(move.toString()).isEqualTo("failed");
        assertThat(move.path("finished").asBoolean()).isTrue();
        assertThat(move.path("detail").asText()).containsAnyOf(reasons);
        JsonNode db = database(id);
        assertThat(db.path("isolation").asText()).isEqualTo(on.wireName());
        assertThat(db.path("status").asText()).isEqualTo("running");
        assertThat(db.has("move")).as("no unfinished move: %s", db).isFalse();

        // exactly one rung
        Path processInstance = processInstances().resolve(id);
        assertThat(Files.exists(processInstance)).as("a process instance of %s", id).isEqualTo(on == Rung.PROCESS);
        if (on != Rung.PROCESS) {
            assertThat(TestControlPlaneCrash.postgresProcessesUnder(processInstance)).as("process rung servers")
                    .isEmpty();
        }
        assertThat(palisade.server().sharedServers().serverOf(id).isPresent()).as("a shared-rung tenant %s", id)
                .isEqualTo(on != Rung.PROCESS);

        // nothing of the copy on the source server
        TenantPlace place = palisade.server().service().tenantPlace(id);
        try (Connection c = AdminConnection.open(place.admin(), place.database())) {
            assertThat(strings(c, "select rolname from pg_roles where rolname like 'palisade\\_move\\_%'"))
                    .as("move logins").isEmpty();
            assertThat(strings(c, "select pubname from pg_publication")).as("publications").isEmpty();
            assertThat(strings(c, "select subname from pg_subscription")).as("subscriptions").isEmpty();
            // the move's slot and its initial copy's (pg_<subscription>_sync_<table>_<system>); a process instance
            // has its archiver's too
            assertThat(strings(c, "select slot_name from pg_replication_slots"
                    + " where slot_name like 'palisade\\_move\\_%' or slot_name like 'pg\\_%\\_sync\\_%'"))
                    .as("replication slots").isEmpty();
            assertThat(strings(c, "select relreplident::text from pg_class where oid = '"
                    + Sql.quoteIdent(place.namespace()) + ".nopk'::regclass")).as("replica identity of nopk")
                    .containsExactly("d");
            assertThat(strings(c, "select rolcanlogin::text from pg_roles where rolname = '" + place.role() + "'"))
                    .as("the tenant's LOGIN").containsExactly("true");
        }

        // every acknowledged commit, and writes still work (an UPDATE of a table without replica identity fails
        // while a publication covers it)
        String url = palisade.get("/v1/databases/" + id + "/connection").json().path("connection_url").asText();
        assertAllAcknowledgedPresentOnce(url, writer);
        execute(url, "insert into writes (n) values (-1); update nopk set v = v || '!';"
                + " delete from nopk where v = 'b!'");
        assertThat(scalar(url, "select string_agg(v, ',' order by v) from nopk")).isEqualTo("a!");
        assertThat(scalar(url, "select count(*) from big")).isEqualTo(scalar(url, "select max(id) from big"));
    }

    /** {@code big} (many rows), {@code nopk} (no primary key: replica identity FULL during a move). */
    private static void seed(String url, int rows) throws SQLException {
        execute(url, "create table big (id bigint primary key, pad text not null);"
                + " insert into big select g, repeat(md5(g::text), 10) from generate_series(1, " + rows + ") g;"
                + " create table nopk (v text); insert into nopk values ('a'), ('b')");
    }

    private void startMove(String id, Rung to) {
        TestingPalisade.Response started = palisade.post("/v1/databases/" + id + "/isolation",
                "{\"isolation\":\"" + to.wireName() + "\"}");
        assertThat(started.status()).as(started.body()).isEqualTo(202);
    }

    private JsonNode call(TestingPalisadeProcess serve, String method, String path, String body, int status)
            throws IOException, InterruptedException {
        HttpRequest request = TestControlPlaneCrash.request(serve, key, path)
                .header("Content-Type", "application/json")
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body))
                .build();
        HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as("%s %s: %s", method, path, response.body()).isEqualTo(status);
        return MAPPER.readTree(response.body());
    }

    /** Polls the move (fast) until {@code until} holds; fails if it ends first. */
    private JsonNode awaitMove(TestingPalisadeProcess serve, String id, Predicate<JsonNode> until) {
        JsonNode[] last = new JsonNode[1];
        await("the move of " + id).atMost(MOVE_TIMEOUT).pollInterval(Duration.ofMillis(20)).until(() -> {
            last[0] = call(serve, "GET", "/v1/databases/" + id + "/move", null, 200);
            assertThat(last[0].path("finished").asBoolean()).as("the move ended early: %s\n%s", last[0],
                    serve.logTail()).isFalse();
            return until.test(last[0]);
        });
        return last[0];
    }

    /**
     * A superuser connection to the move's target (a process instance of {@code id}) once the copy of every table is
     * done and the change stream applies to them all.
     */
    private Connection awaitTargetReady(TestingPalisadeProcess serve, String id) {
        Path instance = processInstances().resolve(id);
        Connection[] target = new Connection[1];
        await("the copy of " + id + " is done").atMost(MOVE_TIMEOUT).pollInterval(Duration.ofMillis(20)).until(() -> {
            assertThat(call(serve, "GET", "/v1/databases/" + id + "/move", null, 200).path("finished").asBoolean())
                    .as("the move ended early").isFalse();
            if (target[0] == null) {
                if (!Files.exists(instance.resolve("data/postmaster.pid")) || !Files.exists(instance.resolve("port"))) {
                    return false;
                }
                Path socket = PostgresServer.socketDirFor(id).resolve(".s.PGSQL."
                        + Files.readString(instance.resolve("port")).strip());
                try {
                    target[0] = AdminConnection.open(socket, "app");
                } catch (RuntimeException e) {
                    return false;
                }
            }
            List<String> states = strings(target[0], "select srsubstate::text from pg_subscription_rel");
            return !states.isEmpty() && states.stream().allMatch("r"::equals);
        });
        return target[0];
    }

    private Path processInstances() {
        return dataDir.resolve("instances/process");
    }

    private static long postmasterPid(Path dataDirectory) throws IOException {
        return Long.parseLong(Files.readAllLines(dataDirectory.resolve("postmaster.pid")).getFirst().strip());
    }

    private static List<String> children(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static void unmount(Path dir) {
        if (Processes.run(List.of("mountpoint", "-q", dir.toString()), Duration.ofSeconds(10), null).exitCode() == 0) {
            Processes.run(List.of("umount", dir.toString()), Duration.ofSeconds(30), null);
        }
    }

    private static List<String> strings(Connection c, String sql) throws SQLException {
        List<String> values = new ArrayList<>();
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            while (rs.next()) {
                values.add(rs.getString(1));
            }
        }
        return values;
    }
}
