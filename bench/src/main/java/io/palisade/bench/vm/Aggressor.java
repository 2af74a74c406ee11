package io.palisade.bench.vm;

import static java.util.Objects.requireNonNull;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A noisy tenant: {@code cpuSessions} sessions spinning a CPU-only query ({@code count(*)} over a
 * {@code generate_series} in the target list, so nothing is materialised) under a statement timeout, and optionally
 * one session writing in a loop ({@code INSERT … SELECT} of 25k rows, ~6 MB, {@code CHECKPOINT}, {@code TRUNCATE}
 * every 12th round to bound the disk). The tenant needs {@code pg_checkpoint} (granted by the benchmark through the
 * superuser) unless the IO session runs without {@code CHECKPOINT}, as a tenant of a shared server must.
 * Thread-safe: {@link #close()} may be called from any thread, and is idempotent.
 */
public final class Aggressor implements AutoCloseable {
    private static final String CPU_QUERY = "SELECT count(*) FROM (SELECT generate_series(1, 10000000000::bigint)) s";

    private final AtomicBoolean running = new AtomicBoolean(true);
    private final List<Thread> threads = new ArrayList<>();
    private final List<Statement> statements = new CopyOnWriteArrayList<>();
    private final AtomicLong ioRounds = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();

    private Aggressor() {}

    /** Creates the aggressor's table. */
    public static void prepare(TenantConnection tenant) throws SQLException {
        try (Connection connection = tenant.connect();
                Statement statement = connection.createStatement()) {
            statement.execute("CREATE TABLE IF NOT EXISTS junk (id int, pad text)");
        }
    }

    /** Starts {@code cpuSessions} CPU sessions and, if {@code io}, the IO session (with {@code CHECKPOINT}). */
    public static Aggressor start(TenantConnection tenant, int cpuSessions, boolean io) {
        return start(tenant, cpuSessions, io, true);
    }

    /**
     * As {@link #start(TenantConnection, int, boolean)}; {@code checkpoint} false leaves {@code CHECKPOINT} out of the
     * IO loop (the server's own checkpoints then write the data back).
     */
    public static Aggressor start(TenantConnection tenant, int cpuSessions, boolean io, boolean checkpoint) {
        requireNonNull(tenant, "tenant is null");
        Aggressor aggressor = new Aggressor();
        for (int i = 0; i < cpuSessions; i++) {
            aggressor.threads.add(Thread.ofPlatform().name("aggressor-cpu-" + i).start(() -> aggressor.loop(tenant,
                    "SET statement_timeout = '8s'", s -> {
                        s.execute(CPU_QUERY);
                    })));
        }
        if (!io) {
            return aggressor;
        }
        aggressor.threads.add(Thread.ofPlatform().name("aggressor-io").start(() -> aggressor.loop(tenant,
                "SET statement_timeout = '60s'", s -> {
                    s.execute("INSERT INTO junk SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 25000) g");
                    if (checkpoint) {
                        s.execute("CHECKPOINT");
                    }
                    if (aggressor.ioRounds.incrementAndGet() % 12 == 0) {
                        s.execute("TRUNCATE junk");
                    }
                })));
        return aggressor;
    }

    /** Completed IO rounds (~6 MB inserted + CHECKPOINT each). */
    public long ioRounds() {
        return ioRounds.get();
    }

    /** Sessions that failed other than by their statement timeout (each reconnects). */
    public long errors() {
        return errors.get();
    }

    private interface Work {
        void run(Statement statement) throws SQLException;
    }

    private void loop(TenantConnection tenant, String setup, Work work) {
        while (running.get()) {
            try (Connection connection = tenant.connect();
                    Statement statement = connection.createStatement()) {
                statement.execute(setup);
                statements.add(statement);
                try {
                    while (running.get()) {
                        try {
                            work.run(statement);
                        } catch (SQLException e) {
                            if (!"57014".equals(e.getSQLState())) { // query_canceled: the statement timeout
                                throw e;
                            }
                        }
                    }
                } finally {
                    statements.remove(statement);
                }
            } catch (SQLException e) {
                if (running.get()) {
                    errors.incrementAndGet();
                    System.err.println("bench: aggressor session error (reconnecting): " + e.getMessage());
                    sleepQuietly(500);
                }
            }
        }
    }

    @Override
    public void close() {
        if (!running.getAndSet(false)) {
            return;
        }
        long deadline = System.nanoTime() + 30_000_000_000L;
        for (Thread thread : threads) {
            // cancel repeatedly: a session may have been between two statements when it was last cancelled
            while (thread.isAlive() && System.nanoTime() < deadline) {
                for (Statement statement : statements) {
                    try {
                        statement.cancel();
                    } catch (SQLException e) {
                        // the session may be gone already
                    }
                }
                try {
                    thread.join(500);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            if (thread.isAlive()) {
                System.err.println("bench: " + thread.getName() + " did not stop within 30 s");
            }
        }
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
