package io.palisade.bench;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.bench.backup.ArchiveLagSampler;
import io.palisade.bench.backup.BenchDatabase;
import io.palisade.bench.backup.PalisadeApi;
import io.palisade.bench.backup.RestoreTimeline;
import io.palisade.bench.backup.ServerLog;
import io.palisade.bench.backup.TenantPgBench;
import io.palisade.bench.vm.HostCpu;
import io.palisade.pgwire.Lsn;
import io.palisade.pgwire.PgConnection;
import io.palisade.server.PalisadeServer;
import io.palisade.server.ServerConfig;
import io.palisade.spi.AdminAccess;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

/**
 * Issue 10's benchmark, on the {@code process} rung with the default local archive and default backup settings, all
 * in one run of one in-process server (proxy off, so pgbench and PgJDBC reach the instances directly):
 * <ol>
 *   <li>a new database → its first base backup complete (the restorable window exists);</li>
 *   <li>archive lag under pgbench TPC-B with durability async, then sync (see {@link ArchiveLagSampler}), and the TPS
 *       of the two runs;</li>
 *   <li>restore as a new database ({@code latest}) at three sizes, by phase (see {@link RestoreTimeline}), after a base
 *       backup on demand and a fixed amount of TPC-B work that the restore must replay;</li>
 *   <li>forks of the current state of a small database;</li>
 *   <li>a neighbour's {@code pgbench -S} latency at a fixed rate while a base backup of the largest database runs,
 *       against the same neighbour with no backup running, interleaved over several rounds.</li>
 * </ol>
 * {@code -Dbench.quick=true} runs the same steps at toy sizes, for development.
 */
final class BackupBench {
    private static final boolean QUICK = Boolean.getBoolean("bench.quick");
    static final int NEW_DATABASES = QUICK ? 2 : 5;
    static final int TPCB_SCALE = QUICK ? 2 : 10;
    static final int TPCB_CLIENTS = 4;
    static final int TPCB_SECONDS = QUICK ? 8 : 20;
    static final int[] RESTORE_SCALES = java.util.Arrays.stream(System.getProperty("bench.backup.scales",
            QUICK ? "1,2,4" : "1,13,60").split(",")).mapToInt(Integer::parseInt).toArray();
    /** TPC-B transactions per client (2 clients) run after the base backup: the WAL a restore replays. */
    static final int REPLAY_TRANSACTIONS = QUICK ? 500 : 2500;
    static final int FORKS = QUICK ? 3 : 10;
    static final int NEIGHBOUR_RATE = 200;
    static final int NEIGHBOUR_SECONDS = QUICK ? 3 : 10;
    static final int NEIGHBOUR_ROUNDS = QUICK ? 1 : 3;
    private static final String CREATE = "{\"label\":\"%s\",\"isolation\":\"process\"}";

    private BackupBench() {}

    /** Everything the run measured, for the report. */
    static final class Results {
        final Stats created = new Stats();
        final Stats restorable = new Stats();
        /** Instance up ("created … in" logged) → 201: archive, archiver and durability set up, response written. */
        final Stats archiveSetup = new Stats();
        long firstBackupBytes;
        final Map<String, TenantPgBench.Result> tps = new LinkedHashMap<>();
        final Map<String, ArchiveLagSampler.Result> lag = new LinkedHashMap<>();
        /** Per durability: WAL objects written to the archive during the run, and their sealed bytes. */
        final Map<String, long[]> walObjects = new LinkedHashMap<>();
        String syncState = "?";
        final List<RestoreRow> restores = new ArrayList<>();
        final List<RestoreTimeline.Timing> forks = new ArrayList<>();
        long forkSourceBytes;
        final Stats alone = new Stats();
        final Stats duringBackup = new Stats();
        final List<Double> aloneCpu = new ArrayList<>();
        final List<Double> backupCpu = new ArrayList<>();
        final List<String> backupRuns = new ArrayList<>();
        long neighbourBigBytes;
    }

    /** One size of the restore table. */
    record RestoreRow(int scale, long databaseBytes, long backupMillis, long backupBytes,
            RestoreTimeline.Timing restore, long restorableMillis) {}

    static void run() throws Exception {
        String loadBefore = VmBench.loadAverage();
        long benchStart = System.nanoTime();
        Results results = new Results();
        Path work = TestingDirectories.newWorkDir("bench-backup");
        String key = "pk_bench_" + Long.toHexString(System.nanoTime());
        ServerConfig config = ServerConfig.from(Map.of(
                "server.data-dir", work.resolve("data").toString(),
                "api.port", "0",
                "api.create-wait", "900s",
                "proxy.enabled", "false"));
        try (PalisadeServer server = PalisadeServer.start(config, Optional.of(key));
                ServerLog log = ServerLog.attach()) {
            PalisadeApi api = new PalisadeApi("http://127.0.0.1:" + server.apiPort(), key);
            progress("warm-up: one create (template, JIT)");
            BenchDatabase warm = api.created("/v1/databases", CREATE.formatted("bench-warm"));
            awaitRestorable(api, warm.id());
            api.delete(warm.id());

            newDatabases(api, log, results);
            archiveLag(server, api, results);
            Map<Integer, BenchDatabase> kept = restores(server, api, log, results);
            forks(api, log, kept.get(RESTORE_SCALES[0]), results);
            neighbour(api, kept.get(RESTORE_SCALES[0]), kept.get(RESTORE_SCALES[RESTORE_SCALES.length - 1]), work,
                    results);
            kept.values().forEach(db -> api.delete(db.id()));
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
        BackupReport.print(results, config, loadBefore, VmBench.loadAverage(),
                Math.round((System.nanoTime() - benchStart) / 1e9));
    }

    /** 1. POST /v1/databases → 201 → window.earliest set (the first base backup is complete). */
    private static void newDatabases(PalisadeApi api, ServerLog log, Results results) {
        for (int i = 0; i < NEW_DATABASES; i++) {
            long start = System.nanoTime();
            BenchDatabase db = api.created("/v1/databases", CREATE.formatted("bench-new-" + i));
            double created = (System.nanoTime() - start) / 1e6;
            long answeredAt = System.currentTimeMillis();
            log.first(answeredAt - 60_000, "created " + db.id() + " in ").ifPresent(line ->
                    results.archiveSetup.add(answeredAt - line.epochMillis()));
            awaitRestorable(api, db.id());
            double restorable = (System.nanoTime() - start) / 1e6;
            results.created.add(created);
            results.restorable.add(restorable);
            results.firstBackupBytes = api.backups(db.id()).path("backups").get(0).path("bytes").asLong();
            progress(String.format("new database %d: 201 after %.0f ms, restorable after %.0f ms", i, created,
                    restorable));
            api.delete(db.id());
        }
    }

    /** 2. TPC-B async then sync on one database; lag sampled while each runs. */
    private static void archiveLag(PalisadeServer server, PalisadeApi api, Results results) throws Exception {
        BenchDatabase db = api.created("/v1/databases", CREATE.formatted("bench-tpcb"));
        progress("TPC-B: pgbench -i -s " + TPCB_SCALE);
        TenantPgBench.initialise(db, TPCB_SCALE);
        ArchiveLagSampler.prepare(db);
        awaitRestorable(api, db.id());
        AdminAccess admin = server.service().adminAccess(db.id());
        for (String durability : List.of("async", "sync")) {
            api.ok("PATCH", "/v1/databases/" + db.id() + "/backup-settings", "{\"durability\":\"" + durability + "\"}");
            awaitArchived(admin, Duration.ofSeconds(120));
            if (durability.equals("sync")) {
                results.syncState = syncState(admin);
            }
            progress("TPC-B " + durability + ": " + TPCB_CLIENTS + " clients, " + TPCB_SECONDS + " s");
            long[] objectsBefore = walObjects(server, api, db.id());
            CompletableFuture<TenantPgBench.Result> load = CompletableFuture.supplyAsync(
                    () -> TenantPgBench.tpcb(db, TPCB_CLIENTS, TPCB_SECONDS),
                    command -> Thread.ofPlatform().name("bench-tpcb").start(command));
            // sample only while the load runs: pgbench connects and vacuums first
            Thread.sleep(1500);
            ArchiveLagSampler sampler = ArchiveLagSampler.start(api, db, admin);
            Thread.sleep(TPCB_SECONDS * 1000L - 2500);
            ArchiveLagSampler.Result lag = sampler.stop(Duration.ofSeconds(60));
            TenantPgBench.Result tps = load.join();
            long[] objectsAfter = walObjects(server, api, db.id());
            results.walObjects.put(durability, new long[] {objectsAfter[0] - objectsBefore[0],
                    objectsAfter[1] - objectsBefore[1]});
            results.tps.put(durability, tps);
            results.lag.put(durability, lag);
            progress(String.format("TPC-B %s: %.0f TPS, %d probes, %d archived at their ack, %d unresolved", durability,
                    tps.tps(), lag.probes(), lag.archivedAtAck(), lag.unresolved()));
        }
        api.ok("PATCH", "/v1/databases/" + db.id() + "/backup-settings", "{\"durability\":\"async\"}");
        api.delete(db.id());
    }

    /**
     * 3. At each size: pgbench -i, a base backup on demand, fixed TPC-B work after it, then restore latest as a new
     * database. Keeps the smallest (fork source, neighbour) and the largest (neighbour's backup) databases.
     */
    private static Map<Integer, BenchDatabase> restores(PalisadeServer server, PalisadeApi api, ServerLog log,
            Results results) throws Exception {
        Map<Integer, BenchDatabase> kept = new LinkedHashMap<>();
        for (int scale : RESTORE_SCALES) {
            BenchDatabase db = api.created("/v1/databases", CREATE.formatted("bench-size-" + scale));
            progress("restore: pgbench -i -s " + scale);
            TenantPgBench.initialise(db, scale);
            awaitRestorable(api, db.id());
            long databaseBytes = queryLong(db, "SELECT pg_database_size(current_database())");
            progress("restore: base backup of " + mb(databaseBytes) + " MB on demand");
            long start = System.nanoTime();
            JsonNode backup = api.ok("POST", "/v1/databases/" + db.id() + "/backups", null);
            long backupMillis = (System.nanoTime() - start) / 1_000_000;
            TenantPgBench.tpcbTransactions(db, 2, REPLAY_TRANSACTIONS);
            awaitArchived(server.service().adminAccess(db.id()), Duration.ofSeconds(300));
            progress("restore: latest as a new database");
            RestoreTimeline.Timing restore = RestoreTimeline.measure(api, log, db.id(), "/v1/databases",
                    "{\"label\":\"bench-restored-" + scale + "\",\"restore\":{\"from\":\"" + db.id()
                            + "\",\"latest\":true}}", "SELECT count(*) FROM pgbench_accounts");
            if (restore.rows() != scale * 100_000L) {
                throw new IllegalStateException("the restore of scale " + scale + " has " + restore.rows()
                        + " accounts, expected " + scale * 100_000L);
            }
            // the restored database's own first base backup runs now; let it finish before the next measurement
            long restorableStart = System.nanoTime();
            awaitRestorable(api, restore.db().id());
            long restorableMillis = restore.answerMillis() + (System.nanoTime() - restorableStart) / 1_000_000;
            results.restores.add(new RestoreRow(scale, databaseBytes, backupMillis, backup.path("bytes").asLong(),
                    restore, restorableMillis));
            progress(String.format("restore of scale %d: first query after %d ms (copy %d, check+stage %d, start %d,"
                    + " redo %.2f s)", scale, restore.firstQueryMillis(), restore.copyMillis(), restore.checkMillis(),
                    restore.startMillis(), restore.redoSeconds()));
            api.delete(restore.db().id());
            if (scale == RESTORE_SCALES[0] || scale == RESTORE_SCALES[RESTORE_SCALES.length - 1]) {
                kept.put(scale, db);
            } else {
                api.delete(db.id());
            }
        }
        return kept;
    }

    /** 4. Forks of the current state: POST …/fork → 201 → first query. */
    private static void forks(PalisadeApi api, ServerLog log, BenchDatabase source, Results results) throws Exception {
        results.forkSourceBytes = queryLong(source, "SELECT pg_database_size(current_database())");
        for (int i = 0; i < FORKS; i++) {
            RestoreTimeline.Timing fork = RestoreTimeline.measure(api, log, source.id(),
                    "/v1/databases/" + source.id() + "/fork", "{\"label\":\"bench-fork-" + i + "\"}",
                    "SELECT count(*) FROM pgbench_branches");
            results.forks.add(fork);
            progress(String.format("fork %d: 201 after %d ms, first query after %d ms", i, fork.answerMillis(),
                    fork.firstQueryMillis()));
            // the fork's own first base backup runs now; let it finish so the next fork starts on a quiet host
            awaitRestorable(api, fork.db().id());
            api.delete(fork.db().id());
        }
    }

    /** 5. The neighbour's pgbench -S at a fixed rate, alone and while a base backup of the big database runs. */
    private static void neighbour(PalisadeApi api, BenchDatabase neighbour, BenchDatabase big, Path work,
            Results results) throws Exception {
        results.neighbourBigBytes = queryLong(big, "SELECT pg_database_size(current_database())");
        Path logs = work.resolve("pgbench-logs");
        TenantPgBench.selectOnlyAtRate(neighbour, 1, NEIGHBOUR_RATE, 2, logs); // warm the cache and the path
        for (int round = 1; round <= NEIGHBOUR_ROUNDS; round++) {
            HostCpu before = HostCpu.read();
            double[] alone = TenantPgBench.selectOnlyAtRate(neighbour, 1, NEIGHBOUR_RATE, NEIGHBOUR_SECONDS, logs);
            results.aloneCpu.add(HostCpu.read().busyPercentSince(before));
            for (double latency : alone) {
                results.alone.add(latency);
            }
            long backupStart = System.nanoTime();
            CompletableFuture<JsonNode> backup = CompletableFuture.supplyAsync(
                    () -> api.ok("POST", "/v1/databases/" + big.id() + "/backups", null),
                    command -> Thread.ofPlatform().name("bench-backup").start(command));
            Thread.sleep(1000);
            before = HostCpu.read();
            double[] during = TenantPgBench.selectOnlyAtRate(neighbour, 1, NEIGHBOUR_RATE, NEIGHBOUR_SECONDS, logs);
            results.backupCpu.add(HostCpu.read().busyPercentSince(before));
            long windowEnd = System.nanoTime();
            boolean overlapped = !backup.isDone();
            JsonNode taken = backup.join();
            long backupMillis = (System.nanoTime() - backupStart) / 1_000_000;
            if (!overlapped && !QUICK) {
                throw new IllegalStateException("the base backup of " + big + " ended before the neighbour's window did"
                        + " (" + backupMillis + " ms); use a larger database");
            }
            for (double latency : during) {
                results.duringBackup.add(latency);
            }
            results.backupRuns.add(String.format("%.0f MB in %.1f s%s", taken.path("bytes").asLong() / 1e6,
                    backupMillis / 1000.0, overlapped ? "" : " (ended before the window did)"));
            progress(String.format("neighbour round %d: p99 alone %.2f ms, during backup %.2f ms (backup %s, window"
                    + " ended %.1f s before it)", round, percentile(alone, 99), percentile(during, 99),
                    results.backupRuns.getLast(), (System.nanoTime() - windowEnd) / 1e9));
        }
    }

    // helpers

    private static void awaitRestorable(PalisadeApi api, String id) {
        long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
        while (!api.restorable(id)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(id + " has no restorable window after 10 minutes: " + api.backups(id));
            }
            sleep(50);
        }
    }

    /** Waits until the archive holds everything the server had written when this was called. */
    static void awaitArchived(AdminAccess admin, Duration timeout) {
        try (PgConnection sql = PgConnection.open(admin, "postgres", Duration.ofSeconds(10))) {
            long target = Lsn.parse(sql.simpleQuery("SELECT pg_current_wal_lsn()").getFirst().get(0)).value();
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                String flushed = sql.simpleQuery("SELECT max(flush_lsn) FROM pg_stat_replication"
                        + " WHERE application_name = 'palisade_archiver'").getFirst().get(0);
                if (flushed != null && Long.compareUnsigned(Lsn.parse(flushed).value(), target) >= 0) {
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("the archive did not reach " + new Lsn(target) + " within "
                            + timeout + " (archiver at " + flushed + ")");
                }
                sleep(20);
            }
        }
    }

    /** The WAL objects in a database's local archive: how many, and their sealed bytes. */
    private static long[] walObjects(PalisadeServer server, PalisadeApi api, String id) throws Exception {
        String archiveId = api.backups(id).path("archive").path("archive_id").asText();
        Path wal = server.config().backupLocalDir().resolve("archives").resolve(archiveId).resolve("wal");
        if (!Files.isDirectory(wal)) {
            return new long[] {0, 0};
        }
        try (Stream<Path> files = Files.walk(wal)) {
            List<Path> objects = files.filter(Files::isRegularFile)
                    .filter(f -> !f.getFileName().toString().startsWith(".")).toList();
            long bytes = 0;
            for (Path object : objects) {
                bytes += Files.size(object);
            }
            return new long[] {objects.size(), bytes};
        }
    }

    private static String syncState(AdminAccess admin) {
        try (PgConnection sql = PgConnection.open(admin, "postgres", Duration.ofSeconds(10))) {
            var rows = sql.simpleQuery("SELECT sync_state FROM pg_stat_replication"
                    + " WHERE application_name = 'palisade_archiver'");
            return rows.isEmpty() ? "no archiver connected" : rows.getFirst().get(0);
        }
    }

    private static long queryLong(BenchDatabase db, String sql) throws Exception {
        try (Connection c = db.connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static double percentile(double[] values, double p) {
        Stats stats = new Stats();
        for (double v : values) {
            stats.add(v);
        }
        return stats.percentile(p);
    }

    static long mb(long bytes) {
        return Math.round(bytes / 1e6);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    static void progress(String message) {
        System.err.println("bench: " + message);
    }
}
