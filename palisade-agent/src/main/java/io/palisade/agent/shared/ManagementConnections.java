package io.palisade.agent.shared;

import io.palisade.agent.AdminConnection;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Deque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The management connections of one shared server, kept open between uses: a new one costs the server a backend
 * process (fork, authentication, catalog caches), more than all the statements of a schema tenant's create. A
 * connection handed out goes back on close if it still works and is in autocommit mode; at most {@link #KEPT} are kept
 * per database, and a kept one is checked before it is handed out again (the server may have restarted). Thread-safe.
 */
final class ManagementConnections implements AutoCloseable {
    /**
     * Kept per database: enough for creates one after another beside the pool's monitor. More run at once open more
     * (up to {@link SharedServer#MANAGEMENT_OPERATIONS}) and close them again: each kept one is an idle backend (~1-2
     * MiB of the server's PSS) and one of its connection slots.
     */
    static final int KEPT = 2;

    private final Map<String, Deque<Connection>> idle = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /** A working management connection to {@code database} over {@code socketFile}; close it to give it back. */
    Connection get(Path socketFile, String database) {
        closed = false;
        Deque<Connection> kept = idle.computeIfAbsent(database, d -> new ConcurrentLinkedDeque<>());
        for (Connection c = kept.pollFirst(); c != null; c = kept.pollFirst()) {
            if (works(c)) {
                return lent(c, kept);
            }
            closeQuietly(c);
        }
        return lent(AdminConnection.open(socketFile, database), kept);
    }

    private static boolean works(Connection c) {
        try {
            return c.isValid(2);
        } catch (SQLException e) {
            return false;
        }
    }

    private Connection lent(Connection real, Deque<Connection> home) {
        AtomicBoolean returned = new AtomicBoolean();
        return (Connection) Proxy.newProxyInstance(Connection.class.getClassLoader(), new Class<?>[] {Connection.class},
                (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "close" -> {
                            if (!returned.getAndSet(true)) {
                                giveBack(real, home);
                            }
                            return null;
                        }
                        case "isClosed" -> {
                            return returned.get() || real.isClosed();
                        }
                        default -> {
                            if (returned.get()) {
                                throw new SQLException("this management connection was closed");
                            }
                            try {
                                return method.invoke(real, args);
                            } catch (InvocationTargetException e) {
                                throw e.getCause();
                            }
                        }
                    }
                });
    }

    private void giveBack(Connection real, Deque<Connection> home) {
        try {
            if (!closed && !real.isClosed() && real.getAutoCommit() && home.size() < KEPT) {
                home.offerFirst(real);
                return;
            }
        } catch (SQLException e) {
            // not reusable: closed below
        }
        closeQuietly(real);
    }

    /** Closes every kept connection (the server stops or restarts); connections handed out are closed when returned. */
    @Override
    public void close() {
        closed = true;
        for (Deque<Connection> kept : idle.values()) {
            for (Connection c = kept.pollFirst(); c != null; c = kept.pollFirst()) {
                closeQuietly(c);
            }
        }
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException e) {
            // gone already
        }
    }
}
