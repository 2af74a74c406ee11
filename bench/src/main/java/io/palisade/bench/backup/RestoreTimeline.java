package io.palisade.bench.backup;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Times one restore-as-new or fork, end to end and by phase, from three sources: the client's clock (request → 201 →
 * first query), the operation's progress as {@code GET /v1/databases/{source}/operations} shows it (polled every
 * {@value #POLL_MS} ms: when the base backup is extracted and the manifest check starts), and the server log's
 * timestamps (data directory moved into place, postgres started, credentials set), plus PostgreSQL's own log line
 * {@code redo done at … elapsed: N s} for the WAL replay itself. Stateless.
 */
public final class RestoreTimeline {
    static final int POLL_MS = 20;
    private static final Pattern REDO = Pattern.compile("redo done at .* elapsed: ([0-9.]+) s");
    private static final Pattern LOG_TIME =
            Pattern.compile("^(\\d{4}-\\d{2}-\\d{2}) (\\d{2}:\\d{2}:\\d{2}\\.\\d{3}) UTC");
    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint complete: .* total=([0-9.]+) s");

    private RestoreTimeline() {}

    /**
     * One restore or fork.
     *
     * @param db the new database
     * @param answerMillis request → 201
     * @param firstQueryMillis request → the first query through the new database's connection fields returned
     * @param copyMillis request → the manifest check began (base backup fetched, decrypted, checked and extracted; for
     *     a fork: streamed from the source and extracted); -1 when no poll saw it
     * @param checkMillis manifest check began → data directory moved into place (manifest check and, for a restore,
     *     staging the archived WAL)
     * @param startMillis postgres start → credentials set (recovery: WAL replay and promotion)
     * @param beforeRedoMillis postgres start → PostgreSQL logged {@code redo starts at} (process start, the fsync of
     *     the whole data directory PostgreSQL does before recovering from a backup, reading the backup label); -1 when
     *     it logged no such line
     * @param redoSeconds PostgreSQL's own {@code redo done … elapsed} (NaN when it logged none)
     * @param checkpointSeconds PostgreSQL's end-of-recovery checkpoint, {@code checkpoint complete: … total} (NaN when
     *     it logged none)
     * @param copiedBytes base backup bytes extracted
     * @param walBytes archived WAL bytes staged for replay (0 for a fork, whose copy carries its WAL)
     * @param rows the row count the first query returned
     */
    public record Timing(BenchDatabase db, long answerMillis, long firstQueryMillis, long copyMillis, long checkMillis,
            long startMillis, long beforeRedoMillis, double redoSeconds, double checkpointSeconds, long copiedBytes,
            long walBytes, long rows) {
        public Timing {
            requireNonNull(db, "db is null");
        }
    }

    /**
     * Sends {@code POST path} with {@code body} (a restore-as-new or a fork of {@code sourceId}), waits for 201, then
     * runs {@code countQuery} (one number) through the new database.
     */
    public static Timing measure(PalisadeApi api, ServerLog log, String sourceId, String path, String body,
            String countQuery) throws SQLException, InterruptedException {
        Set<String> before = new HashSet<>();
        for (JsonNode op : operations(api, sourceId)) {
            before.add(op.get("id").asText());
        }
        Map<String, Long> firstSeen = new ConcurrentHashMap<>();
        long[] t0 = {System.currentTimeMillis()};
        JsonNode[] last = new JsonNode[1];
        AtomicBoolean polling = new AtomicBoolean(true);
        Thread poller = Thread.ofPlatform().name("bench-operation-poller").start(() -> {
            while (polling.get()) {
                try {
                    for (JsonNode op : operations(api, sourceId)) {
                        if (!before.contains(op.get("id").asText())) {
                            String phase = op.path("phase").asText("");
                            if (firstSeen.putIfAbsent(category(phase), System.currentTimeMillis()) == null
                                    && Boolean.getBoolean("bench.verbose")) {
                                System.err.printf("bench:   +%d ms %s: %s (%d bytes, %d WAL bytes)%n",
                                        System.currentTimeMillis() - t0[0], op.path("kind").asText(), phase,
                                        op.path("bytes").asLong(), op.path("wal_bytes").asLong());
                            }
                            synchronized (last) {
                                last[0] = op;
                            }
                        }
                    }
                    Thread.sleep(POLL_MS);
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException e) {
                    // a failed poll only loses one sample
                }
            }
        });
        t0[0] = System.currentTimeMillis();
        BenchDatabase db;
        long answered;
        long queried;
        long rows;
        try {
            db = api.created(path, body);
            answered = System.currentTimeMillis();
            try (Connection c = db.connect();
                    Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery(countQuery)) {
                rs.next();
                rows = rs.getLong(1);
            }
            queried = System.currentTimeMillis();
        } finally {
            polling.set(false);
            poller.join();
        }
        JsonNode op = finalOperation(api, sourceId, before).orElseGet(() -> last[0]);
        long moved = logged(log, t0[0], "restore " + db.id() + ": moving the restored data directory into place");
        long started = logged(log, t0[0], "restore " + db.id() + ": starting postgres");
        long credentials = logged(log, t0[0], "restore " + db.id() + ": setting credentials");
        Long check = firstSeen.get("check");
        RecoveryLog recovery = recoveryLog(api, db.id());
        return new Timing(db, answered - t0[0], queried - t0[0], check == null ? -1 : check - t0[0],
                check == null ? -1 : moved - check, credentials - started,
                recovery.redoStartsAt() < 0 ? -1 : recovery.redoStartsAt() - started, recovery.redoSeconds(),
                recovery.checkpointSeconds(),
                op == null ? 0 : op.path("bytes").asLong(), op == null ? 0 : op.path("wal_bytes").asLong(), rows);
    }

    private static String category(String phase) {
        if (phase.startsWith("verifying") || phase.startsWith("staging") || phase.startsWith("replaying")) {
            return "check";
        }
        return phase;
    }

    private static Iterable<JsonNode> operations(PalisadeApi api, String sourceId) {
        return api.get("/v1/databases/" + sourceId + "/operations").path("operations");
    }

    private static Optional<JsonNode> finalOperation(PalisadeApi api, String sourceId, Set<String> before) {
        for (JsonNode op : operations(api, sourceId)) {
            if (!before.contains(op.get("id").asText()) && !op.path("kind").asText().equals("backup")) {
                return Optional.of(op);
            }
        }
        return Optional.empty();
    }

    private static long logged(ServerLog log, long since, String prefix) {
        return log.first(since, prefix).map(ServerLog.Line::epochMillis).orElseThrow(() ->
                new IllegalStateException("the server logged no line starting '" + prefix + "'"));
    }

    /**
     * What PostgreSQL's log says about the recovery of a new database: when {@code redo starts at} was logged (epoch
     * ms, -1 when it was not), its {@code redo done … elapsed} and its end-of-recovery checkpoint's
     * {@code checkpoint complete: … total} in seconds (NaN for what it did not log).
     */
    record RecoveryLog(long redoStartsAt, double redoSeconds, double checkpointSeconds) {}

    static RecoveryLog recoveryLog(PalisadeApi api, String databaseId) {
        long redoStartsAt = -1;
        double redo = Double.NaN;
        double checkpoint = Double.NaN;
        boolean endOfRecovery = false;
        for (JsonNode node : api.get("/v1/databases/" + databaseId + "/logs?lines=1000").path("lines")) {
            String line = node.asText();
            if (line.contains("redo starts at") && redoStartsAt < 0) {
                redoStartsAt = timestamp(line);
            }
            Matcher done = REDO.matcher(line);
            if (done.find() && Double.isNaN(redo)) {
                redo = Double.parseDouble(done.group(1));
            }
            if (line.contains("checkpoint starting: end-of-recovery")) {
                endOfRecovery = true;
            }
            Matcher complete = CHECKPOINT.matcher(line);
            if (endOfRecovery && complete.find() && Double.isNaN(checkpoint)) {
                checkpoint = Double.parseDouble(complete.group(1));
            }
            if (Boolean.getBoolean("bench.verbose")) {
                System.err.println("bench:   " + databaseId + ": " + line);
            }
        }
        return new RecoveryLog(redoStartsAt, redo, checkpoint);
    }

    /** The {@code %m} prefix of a PostgreSQL log line ({@code 2026-01-31 12:00:00.123 UTC}) in epoch ms, or -1. */
    private static long timestamp(String line) {
        Matcher m = LOG_TIME.matcher(line);
        if (!m.find()) {
            return -1;
        }
        return java.time.LocalDateTime.parse(m.group(1) + "T" + m.group(2)).toInstant(java.time.ZoneOffset.UTC)
                .toEpochMilli();
    }
}
