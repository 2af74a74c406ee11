package io.palisade.bench.move;

import static java.util.Objects.requireNonNull;

import io.palisade.bench.vm.TenantConnection;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A client that commits continuously through palisade's proxy while its database moves: one row per transaction into
 * {@code writes(n)}, autocommit with synchronous commit, one commit every {@code interval}. For every acknowledged
 * commit it remembers {@code n}, the wall-clock time of the acknowledgement and the port of the PostgreSQL server that
 * acknowledged it ({@code insert … returning inet_server_port()}), so the write pause of a cutover is the time from
 * the last acknowledgement by the old server to the first by the new one. A failed statement (the cutover ends the
 * session with 57P01) is retried on a new connection with the next {@code n}; the number that failed is not counted,
 * whatever became of it. AutoCloseable: close stops it. Thread-safe.
 */
public final class CommitWriter implements AutoCloseable {
    private final TenantConnection tenant;
    private final Duration interval;
    private final List<Ack> acks = new ArrayList<>();
    private final List<String> errors = new ArrayList<>();
    private final AtomicBoolean stop = new AtomicBoolean();
    private final Thread thread;

    /** One acknowledged commit. */
    public record Ack(long n, long atMillis, int port) {}

    /** The writes table checked against the acknowledgements: none may be missing, none present twice. */
    public record Check(int acknowledged, long rows, int missing, long duplicated) {
        public boolean ok() {
            return missing == 0 && duplicated == 0;
        }
    }

    /** Creates {@code writes} if needed and starts writing. */
    public CommitWriter(TenantConnection tenant, Duration interval) throws SQLException {
        this.tenant = requireNonNull(tenant, "tenant is null");
        this.interval = requireNonNull(interval, "interval is null");
        try (Connection c = tenant.connect(); Statement s = c.createStatement()) {
            s.execute("create table if not exists writes (id bigserial primary key, n bigint not null)");
        }
        this.thread = Thread.ofPlatform().name("commit-writer").start(this::write);
    }

    private void write() {
        long n = 0;
        Connection connection = null;
        while (!stop.get()) {
            n++;
            try {
                if (connection == null) {
                    connection = tenant.connect();
                    try (Statement s = connection.createStatement()) {
                        s.execute("set synchronous_commit = on");
                    }
                }
                try (PreparedStatement insert = connection.prepareStatement(
                        "insert into writes (n) values (?) returning inet_server_port()")) {
                    insert.setLong(1, n);
                    try (ResultSet rs = insert.executeQuery()) {
                        rs.next();
                        int port = rs.getInt(1);
                        synchronized (this) {
                            acks.add(new Ack(n, System.currentTimeMillis(), port));
                        }
                    }
                }
                sleep(interval.toMillis());
            } catch (SQLException e) {
                synchronized (this) {
                    errors.add(e.getSQLState() + " " + e.getMessage());
                }
                close(connection);
                connection = null;
                sleep(5);
            }
        }
        close(connection);
    }

    /** How many commits were acknowledged so far: a mark for {@link #pause}. */
    public synchronized int mark() {
        return acks.size();
    }

    /** Waits (bounded) until {@code more} further commits were acknowledged. */
    public void awaitMore(int more, Duration timeout) throws InterruptedException {
        int goal = mark() + more;
        long deadline = System.nanoTime() + timeout.toNanos();
        while (mark() < goal) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the writer got no " + goal + "th acknowledgement within " + timeout
                        + "; errors: " + errors());
            }
            Thread.sleep(10);
        }
    }

    /**
     * The write pause of the cutover after {@code mark}: the last acknowledgement by the server on {@code fromPort}
     * → the first by the one on {@code toPort}, in milliseconds; fails when either is missing.
     */
    public synchronized long pause(int mark, int fromPort, int toPort) {
        long lastOld = -1;
        for (int i = mark; i < acks.size(); i++) {
            Ack ack = acks.get(i);
            if (ack.port() == fromPort) {
                lastOld = ack.atMillis();
            } else if (ack.port() == toPort && lastOld >= 0) {
                return ack.atMillis() - lastOld;
            }
        }
        throw new IllegalStateException("no acknowledgement by port " + fromPort + " followed by one by port " + toPort
                + " after commit " + mark + " of " + acks.size());
    }

    public synchronized List<String> errors() {
        return List.copyOf(errors);
    }

    /** Reads {@code writes} over a new connection and compares it with every acknowledged commit so far. */
    public Check check() throws SQLException {
        Set<Long> acknowledged = new HashSet<>();
        synchronized (this) {
            acks.forEach(ack -> acknowledged.add(ack.n()));
        }
        Set<Long> present = new HashSet<>();
        long rows = 0;
        try (Connection c = tenant.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("select n from writes")) {
            while (rs.next()) {
                rows++;
                present.add(rs.getLong(1));
            }
        }
        int missing = 0;
        for (long n : acknowledged) {
            if (!present.contains(n)) {
                missing++;
            }
        }
        return new Check(acknowledged.size(), rows, missing, rows - present.size());
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
