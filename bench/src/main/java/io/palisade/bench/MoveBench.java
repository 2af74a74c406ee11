package io.palisade.bench;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.bench.backup.PalisadeApi;
import io.palisade.bench.backup.TenantPgBench;
import io.palisade.bench.ladder.ApiTenant;
import io.palisade.bench.move.CommitWriter;
import io.palisade.bench.move.MoveFollower;
import io.palisade.server.PalisadeServer;
import io.palisade.server.ServerConfig;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * Issue 13's benchmark, moves between the rungs that live on the host, in one run of one in-process palisade
 * (proxy on, backups off), every client going through the proxy with the URL the API returned:
 * <ol>
 *   <li>the cutover write pause of each path: one small database travels {@code database → process → schema → process
 *       → database} {@link #ROUNDS} times with a {@link CommitWriter} committing throughout; the pause is its last
 *       commit acknowledged by the old server → its first acknowledged by the new one;</li>
 *   <li>{@code database → process} at three sizes ({@code pgbench -i -s} {@link #SCALES}): the total move time by
 *       phase, and the TPS of a pgbench TPC-B load during the copy ÷ the same load on the same database just before
 *       the move;</li>
 * </ol>
 * After every move every commit the writer was told about is present once (and pgbench's history has every
 * transaction pgbench counted); the report says how many moves were checked and what failed. {@code -Dbench.quick=true}
 * runs the same steps at toy sizes, for development.
 */
final class MoveBench {
    private static final boolean QUICK = Boolean.getBoolean("bench.quick");
    static final int ROUNDS = Integer.getInteger("bench.move.rounds", QUICK ? 1 : 10);
    static final List<String> CYCLE = List.of("database", "process", "schema", "process", "database");
    static final int[] SCALES = java.util.Arrays.stream(System.getProperty("bench.move.scales",
            QUICK ? "1,2,3" : "1,7,33").split(",")).mapToInt(Integer::parseInt).toArray();
    static final int CLIENTS = 2;
    static final int BASELINE_SECONDS = QUICK ? 5 : 10;
    /** The pgbench load during a move runs at most this long (a cutover ends it earlier). */
    static final int LOAD_SECONDS = QUICK ? 10 : 30;
    static final Duration WRITE_INTERVAL = Duration.ofMillis(2);
    private static final Duration MOVE_TIMEOUT = Duration.ofMinutes(10);

    private MoveBench() {}

    /** A database the API created, as the benchmark's clients reach it: PgJDBC and pgbench through the proxy. */
    record Mover(ApiTenant tenant, TenantPgBench.Target pgbench) {
        Mover {
            requireNonNull(tenant, "tenant is null");
            requireNonNull(pgbench, "pgbench is null");
        }

        String id() {
            return tenant.id();
        }
    }

    /** One database → process move at one size. */
    record SizeRow(int scale, long databaseBytes, MoveFollower.Timing move, long writePauseMillis,
            double baselineTps, double copyTps, int copySamples, boolean loadAborted, String commits) {}

    /** Everything the run measured, for {@link MoveReport}. */
    static final class Results {
        final Map<String, Stats> pause = new LinkedHashMap<>();
        final Map<String, Stats> cutover = new LinkedHashMap<>();
        final Map<String, Stats> total = new LinkedHashMap<>();
        final List<SizeRow> sizes = new ArrayList<>();
        int movesChecked;
        final List<String> checkFailures = new ArrayList<>();
        /** pgbench transactions counted but not in pgbench_history (or more rows than it could have written). */
        final List<String> loadFailures = new ArrayList<>();
        long writerCommits;
        final Map<String, Long> phaseSeconds = new LinkedHashMap<>();
    }

    static void run() throws Exception {
        String loadBefore = VmBench.loadAverage();
        long benchStart = System.nanoTime();
        Results results = new Results();
        Path work = TestingDirectories.newWorkDir("bench-move");
        String key = "pk_bench_" + Long.toHexString(System.nanoTime());
        try (PalisadeServer server = PalisadeServer.start(ServerConfig.from(Map.of(
                        "server.data-dir", work.resolve("data").toString(),
                        "api.port", "0",
                        "proxy.port", "0",
                        "backup.enabled", "false")),
                Optional.of(key))) {
            PalisadeApi api = new PalisadeApi("http://127.0.0.1:" + server.apiPort(), key);
            long start = System.nanoTime();
            pauses(server, api, results);
            results.phaseSeconds.put("cutover pauses", (System.nanoTime() - start) / 1_000_000_000);
            start = System.nanoTime();
            sizes(server, api, results);
            results.phaseSeconds.put("sizes", (System.nanoTime() - start) / 1_000_000_000);
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
        MoveReport.print(results, loadBefore, VmBench.loadAverage(), (System.nanoTime() - benchStart) / 1_000_000_000);
    }

    /** 1. One small database around the cycle, ROUNDS times, a writer committing throughout. */
    private static void pauses(PalisadeServer server, PalisadeApi api, Results results) throws Exception {
        Mover mover = create(api, CYCLE.getFirst(), "bench-cycle");
        try (CommitWriter writer = new CommitWriter(mover.tenant(), WRITE_INTERVAL)) {
            writer.awaitMore(100, Duration.ofSeconds(60));
            for (int round = 1; round <= ROUNDS; round++) {
                for (int i = 1; i < CYCLE.size(); i++) {
                    String path = CYCLE.get(i - 1) + " → " + CYCLE.get(i);
                    int fromPort = port(server, mover.id());
                    int mark = writer.mark();
                    MoveFollower.Timing move = MoveFollower.move(api, mover.id(), CYCLE.get(i), MOVE_TIMEOUT);
                    int toPort = port(server, mover.id());
                    writer.awaitMore(50, Duration.ofSeconds(60));
                    long pause = writer.pause(mark, fromPort, toPort);
                    results.pause.computeIfAbsent(path, p -> new Stats()).add(pause);
                    results.cutover.computeIfAbsent(path, p -> new Stats()).add(move.cutoverMillis());
                    results.total.computeIfAbsent(path, p -> new Stats()).add(move.totalMillis());
                    String check = check(writer, results, "round " + round + " " + path);
                    progress(String.format("round %d %s: write pause %d ms (cutover %d ms, move %d ms), %s", round,
                            path, pause, move.cutoverMillis(), move.totalMillis(), check));
                }
            }
            results.writerCommits = writer.mark();
        }
        api.delete(mover.id());
    }

    /** 2. database → process at each size, pgbench's TPC-B before and during the move, the writer throughout. */
    private static void sizes(PalisadeServer server, PalisadeApi api, Results results) throws Exception {
        for (int scale : SCALES) {
            Mover mover = create(api, "database", "bench-size-" + scale);
            progress("size: pgbench -i -s " + scale + " through the proxy");
            TenantPgBench.initialise(mover.pgbench(), scale);
            long databaseBytes = queryLong(mover, "select pg_database_size(current_database())");
            try (CommitWriter writer = new CommitWriter(mover.tenant(), WRITE_INTERVAL)) {
                writer.awaitMore(100, Duration.ofSeconds(60));
                progress(String.format("size %d MB: pgbench TPC-B, %d clients, %d s, no move", mb(databaseBytes),
                        CLIENTS, BASELINE_SECONDS));
                TenantPgBench.Progress baseline = TenantPgBench.tpcbProgress(mover.pgbench(), CLIENTS,
                        BASELINE_SECONDS);
                long historyBefore = queryLong(mover, "select count(*) from pgbench_history");
                progress(String.format("size %d MB: the same load during a move to process", mb(databaseBytes)));
                CompletableFuture<TenantPgBench.Progress> load = CompletableFuture.supplyAsync(
                        () -> TenantPgBench.tpcbProgress(mover.pgbench(), CLIENTS, LOAD_SECONDS),
                        command -> Thread.ofPlatform().name("bench-move-load").start(command));
                Thread.sleep(1500);
                int fromPort = port(server, mover.id());
                int mark = writer.mark();
                MoveFollower.Timing move = MoveFollower.move(api, mover.id(), "process", MOVE_TIMEOUT);
                int toPort = port(server, mover.id());
                TenantPgBench.Progress during = load.join();
                writer.awaitMore(50, Duration.ofSeconds(60));
                long pause = writer.pause(mark, fromPort, toPort);
                long historyDelta = queryLong(mover, "select count(*) from pgbench_history") - historyBefore;
                String commits = check(writer, results, "size " + scale + " database → process");
                if (during.transactions() < 0 || historyDelta < during.transactions()
                        || historyDelta > during.transactions() + CLIENTS) {
                    results.loadFailures.add("size " + scale + ": pgbench counted " + during.transactions()
                            + " transactions, pgbench_history grew by " + historyDelta);
                }
                commits += String.format("; pgbench: %d transactions counted, %d history rows", during.transactions(),
                        historyDelta);
                double[] copy = meanTps(during.samples(), move.seen("copying"), move.seen("cutover"));
                SizeRow row = new SizeRow(scale, databaseBytes, move, pause, meanTps(baseline.samples(), 0,
                        Long.MAX_VALUE)[0], copy[0], (int) copy[1], during.aborted(), commits);
                results.sizes.add(row);
                progress(String.format("size %d MB: move %d ms (cutover %d ms), write pause %d ms, TPS %.0f without a"
                        + " move, %.0f during the copy (%d s), %s", mb(databaseBytes), move.totalMillis(),
                        move.cutoverMillis(), pause, row.baselineTps(), row.copyTps(), row.copySamples(), commits));
            }
            api.delete(mover.id());
        }
    }

    /**
     * The mean TPS of the whole seconds of a run that lie between {@code from} and {@code to} (epoch milliseconds),
     * leaving out the run's first second (connections starting); returns {mean, seconds counted}.
     */
    static double[] meanTps(List<TenantPgBench.Sample> samples, long from, long to) {
        double sum = 0;
        int count = 0;
        for (int i = 1; i < samples.size(); i++) {
            TenantPgBench.Sample sample = samples.get(i);
            long end = Math.round(sample.epochSeconds() * 1000);
            if (end - 1000 >= from && end <= to) {
                sum += sample.tps();
                count++;
            }
        }
        return new double[] {count == 0 ? Double.NaN : sum / count, count};
    }

    private static String check(CommitWriter writer, Results results, String what) throws Exception {
        CommitWriter.Check check = writer.check();
        results.movesChecked++;
        if (!check.ok()) {
            results.checkFailures.add(what + ": " + check);
        }
        return String.format("%d acknowledged commits: %d missing, %d duplicated", check.acknowledged(),
                check.missing(), check.duplicated());
    }

    private static Mover create(PalisadeApi api, String isolation, String label) {
        PalisadeApi.Response response = api.send("POST", "/v1/databases",
                "{\"label\":\"" + label + "\",\"isolation\":\"" + isolation + "\"}");
        if (response.status() != 201) {
            throw new IllegalStateException("create of a " + isolation + " database answered " + response.status()
                    + ": " + response.json());
        }
        JsonNode json = response.json();
        ApiTenant tenant = new ApiTenant(json.get("id").asText(), isolation, json.get("jdbc_url").asText(),
                json.get("username").asText(), json.get("password").asText());
        Map<String, String> environment = new HashMap<>();
        json.get("libpq_env").fields().forEachRemaining(field -> environment.put(field.getKey(),
                field.getValue().asText()));
        environment.put("PGPASSWORD", json.get("password").asText());
        environment.put("PGCONNECT_TIMEOUT", "60");
        environment.put("PGAPPNAME", "palisade-bench");
        return new Mover(tenant, new TenantPgBench.Target(tenant.toString(), environment));
    }

    private static int port(PalisadeServer server, String id) {
        return server.store().find(id).flatMap(record -> record.endpoint()).orElseThrow(
                () -> new IllegalStateException(id + " has no endpoint")).port();
    }

    private static long queryLong(Mover mover, String sql) throws Exception {
        try (Connection c = mover.tenant().connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static long mb(long bytes) {
        return Math.round(bytes / 1e6);
    }

    static void progress(String message) {
        System.err.println("bench: " + message);
    }
}
