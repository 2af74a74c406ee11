package io.palisade.server;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A client that commits continuously through palisade's proxy while something happens to its database (a move): one
 * row per transaction into {@code writes(n)}, autocommit with synchronous commit, remembering every {@code n} whose
 * commit was acknowledged. A failed statement (the cutover ends the session with 57P01) is retried on a new connection
 * with the next {@code n}; the number that failed is not counted, whatever happened to it. The longest time between two
 * acknowledged commits is the write pause a client saw. AutoCloseable: close stops it.
 */
final class ContinuousWriter implements AutoCloseable {
    private final String url;
    private final Set<Long> acknowledged = new ConcurrentSkipListSet<>();
    private final List<String> errors = java.util.Collections.synchronizedList(new ArrayList<>());
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicLong longestPauseNanos = new AtomicLong();
    private final Thread thread;

    private final Duration pace;

    /** Creates {@code writes} if needed and starts writing as fast as it can. */
    ContinuousWriter(String url) throws SQLException {
        this(url, Duration.ZERO);
    }

    /** As above, resting {@code pace} after each commit (a steady load rather than a flood). */
    ContinuousWriter(String url, Duration pace) throws SQLException {
        this.url = url;
        this.pace = pace;
        try (Connection c = PgUrls.connect(url); var s = c.createStatement()) {
            s.execute("create table if not exists writes (id bigserial primary key, n bigint not null,"
                    + " at timestamptz not null default clock_timestamp())");
        }
        this.thread = Thread.ofPlatform().name("continuous-writer").start(this::write);
    }

    private void write() {
        long n = 0;
        long lastAck = System.nanoTime();
        Connection connection = null;
        while (!stop.get()) {
            n++;
            try {
                if (connection == null) {
                    connection = PgUrls.connect(url);
                    try (var s = connection.createStatement()) {
                        s.execute("set synchronous_commit = on");
                    }
                }
                try (PreparedStatement insert = connection.prepareStatement("insert into writes (n) values (?)")) {
                    insert.setLong(1, n);
                    insert.executeUpdate();
                }
                acknowledged.add(n);
                long now = System.nanoTime();
                longestPauseNanos.accumulateAndGet(now - lastAck, Math::max);
                lastAck = now;
                if (!pace.isZero()) {
                    sleep(pace.toMillis());
                    lastAck = System.nanoTime();
                }
            } catch (SQLException e) {
                errors.add(e.getSQLState() + " " + e.getMessage());
                close(connection);
                connection = null;
                sleep(20);
            }
        }
        close(connection);
    }

    /** The numbers whose commit was acknowledged so far. */
    Set<Long> acknowledged() {
        return Set.copyOf(acknowledged);
    }

    /** The errors seen (SQLSTATE and message), in order. */
    List<String> errors() {
        return List.copyOf(errors);
    }

    /** The longest time between two acknowledged commits. */
    Duration longestPause() {
        return Duration.ofNanos(longestPauseNanos.get());
    }

    /** Waits until at least {@code more} further commits were acknowledged (bounded). */
    void awaitMore(int more, Duration timeout) {
        int goal = acknowledged.size() + more;
        org.awaitility.Awaitility.await("the writer's " + goal + "th acknowledged commit").atMost(timeout)
                .pollInterval(Duration.ofMillis(20)).until(() -> acknowledged.size() >= goal);
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        thread.join(Duration.ofSeconds(30));
    }

    private static void close(Connection connection) {
        if (connection != null) {
            try {
                connection.close();
            } catch (SQLException ignored) {
                // gone already
            }
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
