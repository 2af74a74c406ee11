package io.palisade.bench.backup;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.pgwire.Lsn;
import io.palisade.pgwire.PgConnection;
import io.palisade.pgwire.Row;
import io.palisade.spi.AdminAccess;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * Measures how far a database's archive trails its commits while a load runs, from the server's own records:
 * <ul>
 *   <li>a <em>poller</em> reads, every {@value #POLL_MS} ms over palisade's management connection, the server's WAL
 *       write position ({@code pg_current_wal_lsn()}) and the position the archiver has confirmed as flushed to the
 *       archive ({@code pg_stat_replication.flush_lsn} of {@code palisade_archiver}; the archiver confirms a position
 *       only after the archive store's put of it has returned);</li>
 *   <li>a <em>probe</em> commits one small row every {@value #PROBE_MS} ms through the tenant's own connection,
 *       remembering the WAL insert position just before its COMMIT, the moment the commit was acknowledged, and
 *       whether the archive already held that position right after the acknowledgement. It also reads palisade's own
 *       lag report ({@code GET …/backups} → {@code archive.lag_seconds}, {@code lag_bytes}).</li>
 * </ul>
 * A probe's lag is the time from its acknowledgement to the first poll that shows the archive at or past its position
 * (0 when the archive held it at the acknowledgement), so it is what a commit risks if the disk is lost right after it
 * was acknowledged. Resolution: one poll interval. Thread-safe: start, then stop from one thread.
 */
public final class ArchiveLagSampler {
    static final int POLL_MS = 10;
    static final int PROBE_MS = 100;
    private static final String ARCHIVED = "SELECT max(flush_lsn) FROM pg_stat_replication"
            + " WHERE application_name = 'palisade_archiver'";
    private static final String POSITIONS = "SELECT pg_current_wal_lsn(), (" + ARCHIVED + ")";

    private record Position(long nanos, long written, long archived) {}

    private record Probe(long ackNanos, long lsn, boolean archivedAtAck) {}

    /**
     * What one sampling window saw.
     *
     * @param lagMillis per probe commit: acknowledgement → in the archive, in ms (unresolved probes left out)
     * @param archivedAtAck probe commits the archive already held when their acknowledgement arrived
     * @param unresolved probe commits the archive never reached before the sampler gave up waiting
     * @param behindKib per poll: WAL written by the server but not yet in the archive, in KiB
     * @param reportedLagSeconds per probe: palisade's {@code archive.lag_seconds} (NaN when it reported none)
     * @param reportedLagKib per probe: palisade's {@code archive.lag_bytes}, in KiB
     */
    public record Result(double[] lagMillis, int archivedAtAck, int unresolved, double[] behindKib,
            double[] reportedLagSeconds, double[] reportedLagKib) {
        public int probes() {
            return lagMillis.length + unresolved;
        }
    }

    private final PalisadeApi api;
    private final BenchDatabase db;
    private final AdminAccess admin;
    private final AtomicBoolean probing = new AtomicBoolean(true);
    private final AtomicBoolean polling = new AtomicBoolean(true);
    private final List<Position> positions = new ArrayList<>();
    private final List<Probe> probes = new ArrayList<>();
    private final List<double[]> reported = new ArrayList<>();
    private final List<Throwable> failures = new ArrayList<>();
    private Thread poller;
    private Thread prober;

    private ArchiveLagSampler(PalisadeApi api, BenchDatabase db, AdminAccess admin) {
        this.api = requireNonNull(api, "api is null");
        this.db = requireNonNull(db, "db is null");
        this.admin = requireNonNull(admin, "admin is null");
    }

    /** Creates the probe table (idempotent). */
    public static void prepare(BenchDatabase db) throws SQLException {
        try (Connection c = db.connect(); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS bench_probe"
                    + " (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())");
        }
    }

    public static ArchiveLagSampler start(PalisadeApi api, BenchDatabase db, AdminAccess admin) {
        ArchiveLagSampler sampler = new ArchiveLagSampler(api, db, admin);
        sampler.poller = Thread.ofPlatform().name("bench-archive-poller").start(sampler::poll);
        sampler.prober = Thread.ofPlatform().name("bench-archive-probe").start(sampler::probe);
        return sampler;
    }

    private void poll() {
        try (PgConnection sql = PgConnection.open(admin, "postgres", Duration.ofSeconds(10))) {
            long next = System.nanoTime();
            while (polling.get()) {
                Row row = sql.simpleQuery(POSITIONS).getFirst();
                long now = System.nanoTime();
                if (row.get(1) != null) {
                    synchronized (positions) {
                        positions.add(new Position(now, Lsn.parse(row.get(0)).value(), Lsn.parse(row.get(1)).value()));
                    }
                }
                next += POLL_MS * 1_000_000L;
                LockSupport.parkNanos(Math.max(0, next - System.nanoTime()));
            }
        } catch (RuntimeException e) {
            fail(e);
        }
    }

    private void probe() {
        try (Connection c = db.connect();
                PgConnection sql = PgConnection.open(admin, "postgres", Duration.ofSeconds(10));
                PreparedStatement insert = c.prepareStatement("INSERT INTO bench_probe DEFAULT VALUES");
                PreparedStatement position = c.prepareStatement("SELECT pg_current_wal_insert_lsn()::text")) {
            c.setAutoCommit(false);
            long next = System.nanoTime();
            while (probing.get()) {
                insert.executeUpdate();
                long lsn;
                try (ResultSet rs = position.executeQuery()) {
                    rs.next();
                    lsn = Lsn.parse(rs.getString(1)).value();
                }
                c.commit();
                long ack = System.nanoTime();
                String archived = sql.simpleQuery(ARCHIVED).getFirst().get(0);
                boolean atAck = archived != null && Long.compareUnsigned(Lsn.parse(archived).value(), lsn) >= 0;
                JsonNode archive = api.backups(db.id()).path("archive");
                JsonNode lagSeconds = archive.path("lag_seconds");
                synchronized (probes) {
                    probes.add(new Probe(ack, lsn, atAck));
                    reported.add(new double[] {lagSeconds.isNumber() ? lagSeconds.asDouble() : Double.NaN,
                            archive.path("lag_bytes").asLong() / 1024.0});
                }
                next += PROBE_MS * 1_000_000L;
                long now = System.nanoTime();
                if (next < now) {
                    next = now; // a slow commit (sync durability) delays the schedule instead of bunching probes
                }
                LockSupport.parkNanos(next - now);
            }
        } catch (SQLException | RuntimeException e) {
            fail(e);
        }
    }

    private void fail(Throwable e) {
        synchronized (failures) {
            failures.add(e);
        }
        probing.set(false);
        polling.set(false);
    }

    /**
     * Stops probing, keeps polling until the archive has reached every probe's position (at most {@code grace}), and
     * returns what was seen. Fails if a sampler thread failed.
     */
    public Result stop(Duration grace) throws InterruptedException {
        probing.set(false);
        prober.join(Duration.ofSeconds(60));
        long lastLsn;
        synchronized (probes) {
            lastLsn = probes.stream().mapToLong(Probe::lsn).max().orElse(0);
        }
        long deadline = System.nanoTime() + grace.toNanos();
        while (System.nanoTime() < deadline && polling.get()) {
            synchronized (positions) {
                if (!positions.isEmpty() && Long.compareUnsigned(positions.getLast().archived(), lastLsn) >= 0) {
                    break;
                }
            }
            Thread.sleep(POLL_MS);
        }
        polling.set(false);
        poller.join(Duration.ofSeconds(30));
        synchronized (failures) {
            if (!failures.isEmpty()) {
                throw new IllegalStateException("archive lag sampling of " + db + " failed: " + failures.getFirst(),
                        failures.getFirst());
            }
        }
        return result();
    }

    private Result result() {
        List<Position> seen;
        List<Probe> sent;
        List<double[]> reports;
        synchronized (positions) {
            seen = List.copyOf(positions);
        }
        synchronized (probes) {
            sent = List.copyOf(probes);
            reports = List.copyOf(reported);
        }
        List<Double> lags = new ArrayList<>();
        int atAck = 0;
        int unresolved = 0;
        for (Probe probe : sent) {
            if (probe.archivedAtAck()) {
                atAck++;
                lags.add(0.0);
                continue;
            }
            Position reached = seen.stream()
                    .filter(p -> p.nanos() >= probe.ackNanos() && Long.compareUnsigned(p.archived(), probe.lsn()) >= 0)
                    .findFirst().orElse(null);
            if (reached == null) {
                unresolved++;
            } else {
                lags.add((reached.nanos() - probe.ackNanos()) / 1e6);
            }
        }
        return new Result(lags.stream().mapToDouble(Double::doubleValue).toArray(), atAck, unresolved,
                seen.stream().mapToDouble(p -> Math.max(0, p.written() - p.archived()) / 1024.0).toArray(),
                reports.stream().mapToDouble(r -> r[0]).toArray(), reports.stream().mapToDouble(r -> r[1]).toArray());
    }
}
