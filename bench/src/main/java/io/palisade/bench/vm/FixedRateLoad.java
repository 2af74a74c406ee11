package io.palisade.bench.vm;

import static java.util.Objects.requireNonNull;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.LockSupport;

/**
 * The victim's load: a small indexed SELECT (or {@code SELECT 1}) at a fixed rate over one connection. Latency is
 * measured from each query's scheduled start (not from when it was actually sent), so a stall also counts against the
 * queries queued behind it, as with {@code pgbench -R}. Stateless.
 */
public final class FixedRateLoad {
    public static final int ROWS = 10_000;

    private FixedRateLoad() {}

    /** Creates and fills the victim's table (idempotent). */
    public static void prepare(TenantConnection tenant) throws SQLException {
        try (Connection connection = tenant.connect();
                Statement statement = connection.createStatement()) {
            statement.execute("CREATE TABLE IF NOT EXISTS victim (id int PRIMARY KEY, v text NOT NULL)");
            statement.execute("INSERT INTO victim SELECT g, md5(g::text) FROM generate_series(1, " + ROWS + ") g"
                    + " ON CONFLICT DO NOTHING");
            statement.execute("ANALYZE victim");
        }
    }

    /**
     * Runs {@code rate} queries per second for {@code duration} and returns each query's latency in milliseconds.
     * Fails on the first failed query.
     */
    public static double[] run(TenantConnection tenant, int rate, Duration duration) throws SQLException {
        return run(tenant, rate, duration, "SELECT v FROM victim WHERE id = ?", true);
    }

    /**
     * As {@link #run} with {@code SELECT 1}: no table, so the victim measures only its connection path and how soon its
     * server runs it (nothing to {@link #prepare}).
     */
    public static double[] selectOne(TenantConnection tenant, int rate, Duration duration) throws SQLException {
        return run(tenant, rate, duration, "SELECT 1", false);
    }

    private static double[] run(TenantConnection tenant, int rate, Duration duration, String sql, boolean keyed)
            throws SQLException {
        requireNonNull(tenant, "tenant is null");
        int count = (int) (duration.toMillis() * rate / 1000);
        double[] latencies = new double[count];
        long intervalNanos = 1_000_000_000L / rate;
        try (Connection connection = tenant.connect();
                PreparedStatement query = connection.prepareStatement(sql)) {
            query.setQueryTimeout(30);
            for (int warm = 0; warm < 10; warm++) {
                execute(query, keyed);
            }
            long start = System.nanoTime();
            for (int i = 0; i < count; i++) {
                long scheduled = start + i * intervalNanos;
                long wait;
                while ((wait = scheduled - System.nanoTime()) > 0) {
                    LockSupport.parkNanos(wait);
                }
                execute(query, keyed);
                latencies[i] = (System.nanoTime() - scheduled) / 1e6;
            }
        }
        return latencies;
    }

    private static void execute(PreparedStatement query, boolean keyed) throws SQLException {
        if (keyed) {
            query.setInt(1, 1 + ThreadLocalRandom.current().nextInt(ROWS));
        }
        try (ResultSet rows = query.executeQuery()) {
            if (!rows.next()) {
                throw new SQLException("victim row missing");
            }
        }
    }
}
