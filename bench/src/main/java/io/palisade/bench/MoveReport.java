package io.palisade.bench;

import io.palisade.bench.move.MoveFollower;
import java.util.List;
import java.util.Map;

/** Prints {@link MoveBench}'s tables and the goals, met or not. Stateless. */
final class MoveReport {
    private MoveReport() {}

    static void print(MoveBench.Results r, String loadBefore, String loadAfter, long seconds) {
        System.out.println();
        System.out.println("## move (issue 13): online moves between the rungs on the host, clients through the proxy");
        System.out.println("machine: " + Machine.describe());
        System.out.println("host load average (1/5/15 min) before: " + loadBefore + ", after: " + loadAfter
                + "; whole run " + seconds + " s " + r.phaseSeconds + "; backups off; writer: one synchronous commit"
                + " every " + MoveBench.WRITE_INTERVAL.toMillis() + " ms through the proxy (PgJDBC, retried on a new"
                + " connection after an error)");

        System.out.println();
        System.out.println("### cutover write pause per path: one small database around "
                + String.join(" → ", MoveBench.CYCLE) + ", " + MoveBench.ROUNDS
                + (MoveBench.ROUNDS == 1 ? " time" : " times"));
        System.out.println();
        System.out.println("| path | moves | write pause p50 ms | p95 ms | max ms | palisade's `cutover_ms` p50 |"
                + " POST → done p50 s |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|");
        for (Map.Entry<String, Stats> entry : r.pause.entrySet()) {
            Stats pause = entry.getValue();
            System.out.printf("| %s | %d | %.0f | %.0f | %.0f | %.0f | %.1f |%n", entry.getKey(), pause.count(),
                    pause.percentile(50), pause.percentile(95), pause.max(),
                    r.cutover.get(entry.getKey()).percentile(50), r.total.get(entry.getKey()).percentile(50) / 1000);
        }
        System.out.println("Write pause = the writer's last commit acknowledged by the old server → its first"
                + " acknowledged by the new one (each acknowledgement names its server: `insert … returning"
                + " inet_server_port()`). `cutover_ms` = palisade's hold of new connections → switch. p95 of "
                + MoveBench.ROUNDS + " moves is nearest-rank.");

        System.out.println();
        System.out.println("### database → process at three sizes, under pgbench TPC-B (" + MoveBench.CLIENTS
                + " clients, through the proxy, at most " + MoveBench.LOAD_SECONDS + " s) and the writer");
        System.out.println();
        System.out.println("| database | copy (`total_bytes`) | POST → done s | preparing s | copying s |"
                + " cutover → done s | `cutover_ms` | write pause ms | TPS without a move |"
                + " TPS during the copy (seconds) | ratio |");
        System.out.println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (MoveBench.SizeRow row : r.sizes) {
            MoveFollower.Timing move = row.move();
            long copying = first(move, "copying", "cutover", "switched", "done");
            long cutover = first(move, "cutover", "switched", "done");
            long end = move.startedAt() + move.totalMillis();
            System.out.printf("| %d MB (scale %d) | %d MB | %.1f | %.1f | %.1f | %.1f | %d | %d | %.0f | %s | %s |%n",
                    MoveBench.mb(row.databaseBytes()), row.scale(), MoveBench.mb(move.totalBytes()),
                    move.totalMillis() / 1000.0, (copying - move.startedAt()) / 1000.0, (cutover - copying) / 1000.0,
                    (end - cutover) / 1000.0, move.cutoverMillis(), row.writePauseMillis(), row.baselineTps(),
                    row.copySamples() == 0 ? "— (copy < 1 s)" : String.format("%.0f (%d)", row.copyTps(),
                            row.copySamples()),
                    row.copySamples() == 0 ? "—" : String.format("%.2f", row.copyTps() / row.baselineTps()));
        }
        System.out.println("Phases as `GET …/move` reported them (polled every 100 ms). TPS during the copy = mean of"
                + " pgbench's per-second TPS (`-P 1`) over the whole seconds in the copying phase; without a move = the"
                + " same load on the same database (still on `database`) for " + MoveBench.BASELINE_SECONDS
                + " s just before. The cutover ends pgbench's sessions (57P01): pgbench aborts those clients, so the"
                + " load stops at the cutover.");
        r.sizes.forEach(row -> System.out.printf("- scale %d: %s%s%n", row.scale(), row.commits(),
                row.loadAborted() ? "; pgbench's clients were aborted by the cutover" : ""));

        System.out.println();
        System.out.printf("Commits: %d moves checked, %s; the writer committed %d times around the cycle."
                + " pgbench: %s.%n",
                r.movesChecked, r.checkFailures.isEmpty() ? "every acknowledged commit present exactly once after each"
                        : r.checkFailures.size() + " FAILED: " + r.checkFailures, r.writerCommits,
                r.loadFailures.isEmpty() ? "pgbench_history holds every transaction pgbench counted, after each move"
                        : "FAILED: " + r.loadFailures);
        System.out.println("Not measured here: the vm rung (a guest under TCG applies changes far slower than a host"
                + " process; TestMovesWithVm moves into and out of a VM under writes and prints its cutovers).");
        goals(r);
    }

    private static void goals(MoveBench.Results r) {
        System.out.println();
        System.out.println("Goals:");
        for (String path : List.of("database → process", "process → schema", "schema → process",
                "process → database")) {
            Stats pause = r.pause.get(path);
            if (pause != null) {
                System.out.printf("- cutover pause p50 ≤ 1 s, %s: %.0f ms — %s%n", path, pause.percentile(50),
                        pause.percentile(50) <= 1000 ? "met" : "NOT met");
            }
        }
        boolean met = r.checkFailures.isEmpty() && r.loadFailures.isEmpty();
        System.out.printf("- zero lost or duplicated commits in 100%% of runs: %d of %d moves — %s%n",
                r.movesChecked - r.checkFailures.size(), r.movesChecked, met ? "met" : "NOT met");
    }

    /** When the first of {@code phases} was seen (the poll can miss a short phase). */
    private static long first(MoveFollower.Timing move, String... phases) {
        for (String phase : phases) {
            if (move.seen(phase) >= 0) {
                return move.seen(phase);
            }
        }
        return move.startedAt() + move.totalMillis();
    }
}
