package io.palisade.bench;

import io.palisade.bench.backup.ArchiveLagSampler;
import io.palisade.bench.backup.RestoreTimeline;
import io.palisade.server.ServerConfig;
import java.util.List;
import java.util.function.ToDoubleFunction;

/** Prints {@link BackupBench}'s tables and the goals, met or not. Stateless. */
final class BackupReport {
    private BackupReport() {}

    static void print(BackupBench.Results r, ServerConfig config, String loadBefore, String loadAfter, long seconds) {
        System.out.println();
        System.out.println("## backup (issue 10): process rung, local archive, default backup settings");
        System.out.println("machine: " + Machine.describe());
        System.out.println("host load average (1/5/15 min) before: " + loadBefore + ", after: " + loadAfter
                + "; whole run " + seconds + " s; backup.flush-interval "
                + config.backupConfig().flushInterval().toMillis() + " ms, backup.max-rate "
                + config.backupConfig().maxRateKbps() + " kB/s");

        System.out.println();
        System.out.println("### a new database → its first base backup (restorable window exists), "
                + BackupBench.NEW_DATABASES + " creates");
        System.out.println();
        System.out.println("| step | p50 ms | max ms |");
        System.out.println("|---|---:|---:|");
        System.out.printf("| POST /v1/databases → 201 (running) | %.0f | %.0f |%n", r.created.percentile(50),
                r.created.max());
        System.out.printf("| POST /v1/databases → `window.earliest` set (first base backup of %d MB complete, its WAL"
                + " archived) | %.0f | %.0f |%n", BackupBench.mb(r.firstBackupBytes), r.restorable.percentile(50),
                r.restorable.max());
        System.out.printf("| of which: instance up → 201 (archive, archiver, durability settings set up) | %.0f |"
                + " %.0f |%n", r.archiveSetup.percentile(50), r.archiveSetup.max());

        lag(r);
        restores(r);
        forks(r);
        neighbour(r);
        goals(r);
    }

    private static void lag(BackupBench.Results r) {
        System.out.println();
        System.out.println("### archive lag under pgbench TPC-B (scale " + BackupBench.TPCB_SCALE + ", "
                + BackupBench.TPCB_CLIENTS + " clients, " + BackupBench.TPCB_SECONDS + " s each, same database)");
        System.out.println();
        System.out.println("| durability | TPS | probe commits | in the archive at their ack | lag p50 s | lag p99 s |"
                + " lag max s | WAL not yet archived p50 / p99 KiB | palisade's `lag_seconds` p50 / p99 / max |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (var entry : r.lag.entrySet()) {
            ArchiveLagSampler.Result lag = entry.getValue();
            Stats seconds = stats(lag.lagMillis());
            Stats behind = stats(lag.behindKib());
            Stats reported = stats(java.util.Arrays.stream(lag.reportedLagSeconds()).filter(d -> !Double.isNaN(d))
                    .toArray());
            System.out.printf("| %s | %.0f | %d%s | %d | %.3f | %.3f | %.3f | %.0f / %.0f | %s |%n", entry.getKey(),
                    r.tps.get(entry.getKey()).tps(), lag.probes(),
                    lag.unresolved() > 0 ? " (" + lag.unresolved() + " never archived in time)" : "",
                    lag.archivedAtAck(), seconds.percentile(50) / 1000, seconds.percentile(99) / 1000,
                    seconds.max() / 1000, behind.percentile(50), behind.percentile(99),
                    reported.count() == 0 ? "none" : String.format("%.2f / %.2f / %.2f", reported.percentile(50),
                            reported.percentile(99), reported.max()));
        }
        System.out.printf("%nTPS sync ÷ async: %.2f (archiver's sync_state during the sync run: %s)%n",
                r.tps.get("sync").tps() / r.tps.get("async").tps(), r.syncState);
        for (var entry : r.walObjects.entrySet()) {
            long objects = entry.getValue()[0];
            System.out.printf("WAL objects written to the archive during the %s run: %d (%.0f per second, %.1f KiB"
                    + " sealed on average)%n", entry.getKey(), objects, objects / (double) BackupBench.TPCB_SECONDS,
                    objects == 0 ? 0 : entry.getValue()[1] / 1024.0 / objects);
        }
        System.out.println("Lag of a commit = its acknowledgement → the first 10 ms poll of"
                + " `pg_stat_replication.flush_lsn` (what the archiver confirmed after its archive write returned)"
                + " at or past the WAL position just before its COMMIT; probe: one row committed every 100 ms through"
                + " the tenant's connection, alongside pgbench. 0 = already in the archive when the commit returned.");
    }

    private static void restores(BackupBench.Results r) {
        System.out.println();
        System.out.println("### restore `latest` as a new database (base backup on demand, then "
                + 2 * BackupBench.REPLAY_TRANSACTIONS + " TPC-B transactions to replay)");
        System.out.println();
        System.out.println("| pgbench scale | database MB | base backup taken: MB in s | WAL to replay MB |"
                + " base backup fetched, decrypted, checked, extracted s | manifest check + WAL staged s |"
                + " postgres start → ready s | of which before redo (start, fsync of the data directory) s |"
                + " of which redo s | of which end-of-recovery checkpoint s |"
                + " POST → 201 s | POST → first query s | first query − redo s | restored database restorable s |");
        System.out.println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (BackupBench.RestoreRow row : r.restores) {
            RestoreTimeline.Timing t = row.restore();
            System.out.printf("| %d | %d | %d in %.1f | %.0f | %s | %s | %.2f | %s | %s | %s | %.2f | %.2f | %.2f |"
                    + " %.1f |%n",
                    row.scale(), BackupBench.mb(row.databaseBytes()), BackupBench.mb(row.backupBytes()),
                    row.backupMillis() / 1000.0, t.walBytes() / 1e6, seconds(t.copyMillis()), seconds(t.checkMillis()),
                    t.startMillis() / 1000.0, seconds(t.beforeRedoMillis()), redo(t), checkpoint(t),
                    t.answerMillis() / 1000.0,
                    t.firstQueryMillis() / 1000.0,
                    t.firstQueryMillis() / 1000.0 - (Double.isNaN(t.redoSeconds()) ? 0 : t.redoSeconds()),
                    row.restorableMillis() / 1000.0);
        }
        System.out.println("Phases: operation progress polled every " + 20 + " ms (start of the manifest check),"
                + " the server log's timestamps (data directory moved into place, postgres started, credentials set),"
                + " PostgreSQL's log (`redo starts`, `redo done … elapsed`, end-of-recovery `checkpoint complete …"
                + " total`); each restore's row count is checked.");
    }

    private static void forks(BackupBench.Results r) {
        List<RestoreTimeline.Timing> forks = r.forks;
        System.out.println();
        Stats copied = new Stats();
        forks.forEach(t -> copied.add(t.copiedBytes() / 1e6));
        System.out.println("### fork of the current state (process rung), " + forks.size() + " forks of a "
                + BackupBench.mb(r.forkSourceBytes) + " MB database (each copies " + Math.round(copied.percentile(50))
                + " MB: the whole data directory and its WAL)");
        System.out.println();
        System.out.println("| step | p50 ms | p95 ms | max ms |");
        System.out.println("|---|---:|---:|---:|");
        row("POST …/fork → 201", forks, t -> t.answerMillis());
        row("POST …/fork → first query through the fork", forks, t -> t.firstQueryMillis());
        row("of which: copy (BASE_BACKUP with WAL from the source, extract)", forks, t -> t.copyMillis());
        row("of which: manifest check, move into place", forks, t -> t.checkMillis());
        row("of which: postgres start (recovery from the copy) → ready", forks, t -> t.startMillis());
        row("… of which before redo (start, fsync of the data directory)", forks, t -> t.beforeRedoMillis());
        row("… of which PostgreSQL's redo", forks, t -> t.redoSeconds() * 1000);
        row("… of which PostgreSQL's end-of-recovery checkpoint", forks, t -> t.checkpointSeconds() * 1000);
    }

    private static void row(String name, List<RestoreTimeline.Timing> timings,
            ToDoubleFunction<RestoreTimeline.Timing> value) {
        Stats stats = new Stats();
        timings.forEach(t -> stats.add(value.applyAsDouble(t)));
        System.out.printf("| %s | %.0f | %.0f | %.0f |%n", name, stats.percentile(50), stats.percentile(95),
                stats.max());
    }

    private static void neighbour(BackupBench.Results r) {
        System.out.println();
        System.out.println("### neighbour: `pgbench -S` at " + BackupBench.NEIGHBOUR_RATE + " tx/s (1 client, scale "
                + 1 + ") while a base backup of a " + BackupBench.mb(r.neighbourBigBytes)
                + " MB database runs, interleaved with windows alone, " + BackupBench.NEIGHBOUR_ROUNDS + " rounds × "
                + BackupBench.NEIGHBOUR_SECONDS + " s");
        System.out.println();
        System.out.println("| neighbour's condition | transactions | p50 ms | p99 ms | max ms |"
                + " host CPU busy, % of 1 core |");
        System.out.println("|---|---:|---:|---:|---:|---:|");
        System.out.printf("| alone | %d | %.2f | %.2f | %.2f | %.0f |%n", r.alone.count(), r.alone.percentile(50),
                r.alone.percentile(99), r.alone.max(), mean(r.aloneCpu));
        System.out.printf("| base backup of the other database running | %d | %.2f | %.2f | %.2f | %.0f |%n",
                r.duringBackup.count(), r.duringBackup.percentile(50), r.duringBackup.percentile(99),
                r.duringBackup.max(), mean(r.backupCpu));
        System.out.printf("%nneighbour p99 during ÷ alone: %.2f (base backups: %s; latency from pgbench's scheduled"
                + " start, per-transaction log)%n", r.duringBackup.percentile(99) / r.alone.percentile(99),
                String.join(", ", r.backupRuns));
    }

    private static void goals(BackupBench.Results r) {
        System.out.println();
        System.out.println("### goals (issue 10)");
        System.out.println();
        System.out.println("| goal | measured | met |");
        System.out.println("|---|---|---|");
        double asyncP99 = stats(r.lag.get("async").lagMillis()).percentile(99) / 1000;
        System.out.printf("| async RPO p99 ≤ 1 s | %.3f s | %s |%n", asyncP99, asyncP99 <= 1 ? "yes" : "**no**");
        ArchiveLagSampler.Result sync = r.lag.get("sync");
        boolean syncZero = sync.archivedAtAck() == sync.probes();
        System.out.printf("| sync RPO 0 | %d of %d commits in the archive when acknowledged | %s |%n",
                sync.archivedAtAck(), sync.probes(), syncZero ? "yes" : "**no**");
        Stats fork = new Stats();
        r.forks.forEach(t -> fork.add(t.firstQueryMillis()));
        System.out.printf("| fork p50 ≤ 1 s (process) | %.0f ms to the first query | %s |%n", fork.percentile(50),
                fork.percentile(50) <= 1000 ? "yes" : "**no**");
        BackupBench.RestoreRow mid = r.restores.stream()
                .min(java.util.Comparator.comparingLong(row -> Math.abs(row.databaseBytes() - 200_000_000L)))
                .orElseThrow();
        double midSeconds = mid.restore().firstQueryMillis() / 1000.0
                - (Double.isNaN(mid.restore().redoSeconds()) ? 0 : mid.restore().redoSeconds());
        System.out.printf("| restore of 200 MB ≤ 10 s plus replay | %d MB: %.2f s + %s s redo | %s |%n",
                BackupBench.mb(mid.databaseBytes()), midSeconds, redo(mid.restore()),
                midSeconds <= 10 ? "yes" : "**no**");
        double ratio = r.duringBackup.percentile(99) / r.alone.percentile(99);
        System.out.printf("| neighbour p99 ratio ≤ 1.2 | %.2f | %s |%n", ratio, ratio <= 1.2 ? "yes" : "**no**");
    }

    private static Stats stats(double[] values) {
        Stats stats = new Stats();
        for (double v : values) {
            stats.add(v);
        }
        if (stats.count() == 0) {
            stats.add(Double.NaN);
        }
        return stats;
    }

    private static String seconds(long millis) {
        return millis < 0 ? "?" : String.format("%.2f", millis / 1000.0);
    }

    private static String checkpoint(RestoreTimeline.Timing t) {
        return Double.isNaN(t.checkpointSeconds()) ? "?" : String.format("%.2f", t.checkpointSeconds());
    }

    private static String redo(RestoreTimeline.Timing t) {
        return Double.isNaN(t.redoSeconds()) ? "?" : String.format("%.2f", t.redoSeconds());
    }

    private static double mean(List<Double> values) {
        return values.stream().mapToDouble(Double::doubleValue).filter(v -> v >= 0).average().orElse(-1);
    }
}
