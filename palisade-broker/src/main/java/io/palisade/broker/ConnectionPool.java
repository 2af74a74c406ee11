package io.palisade.broker;

import static java.util.Objects.requireNonNull;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.palisade.broker.pg.PgConnection;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Backend connections, pooled per database and bounded per database over all users. An idle connection is handed out
 * again only for the same endpoint, user, database name and password (compared by a keyed hash, never stored in clear),
 * so a pooled login never lets a different password in. When the bound is reached, an idle connection of another
 * login is closed to make room; otherwise the caller waits up to the pool wait timeout. Thread-safe.
 */
final class ConnectionPool implements AutoCloseable {
    private final BrokerConfig config;
    private final MeterRegistry registry;
    private final byte[] hashKey = new byte[32];
    private final Map<String, DatabasePool> pools = new ConcurrentHashMap<>();
    private final ScheduledExecutorService reaper;
    private volatile boolean closed;

    ConnectionPool(BrokerConfig config, MeterRegistry registry) {
        this.config = requireNonNull(config, "config is null");
        this.registry = requireNonNull(registry, "registry is null");
        new SecureRandom().nextBytes(hashKey);
        this.reaper = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "broker-pool-reaper");
            thread.setDaemon(true);
            return thread;
        });
        long period = Math.max(1000, Math.min(30_000, config.idleConnectionTimeout().toMillis() / 2));
        reaper.scheduleWithFixedDelay(this::reap, period, period, TimeUnit.MILLISECONDS);
    }

    /** Who a connection is logged in as; equal keys may share pooled connections. */
    record Key(Endpoint endpoint, String user, String database, String secretHash) {
        Key {
            requireNonNull(endpoint, "endpoint is null");
            requireNonNull(user, "user is null");
            requireNonNull(database, "database is null");
            requireNonNull(secretHash, "secretHash is null");
        }
    }

    /** A connection checked out of the pool; give it back with {@link #release}. */
    static final class Lease {
        final DatabasePool pool;
        final Key key;
        final PgConnection connection;
        final boolean reused;
        long idleSince;

        Lease(DatabasePool pool, Key key, PgConnection connection, boolean reused) {
            this.pool = pool;
            this.key = key;
            this.connection = connection;
            this.reused = reused;
        }
    }

    Key key(Endpoint endpoint, String user, String database, String password) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(hashKey, "HmacSHA256"));
            byte[] digest = mac.doFinal(password.getBytes(StandardCharsets.UTF_8));
            return new Key(endpoint, user, database, HexFormat.of().formatHex(digest));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 missing from this JDK", e);
        }
    }

    /**
     * A logged-in connection for {@code key}: an idle one if there is one, otherwise a new login with {@code password}
     * (which the backend verifies). Throws {@link io.palisade.broker.pg.PgError} for a refused login, IOException when
     * the backend cannot be reached, and {@link PalisadeException} (TOO_MANY_CONNECTIONS) when the pool stays full.
     */
    Lease acquire(String databaseId, Key key, String password) throws IOException {
        while (true) {
            if (closed) {
                throw new PalisadeException(ErrorCode.NOT_READY, "the SQL broker is shutting down");
            }
            DatabasePool pool = pools.computeIfAbsent(databaseId, DatabasePool::new);
            Lease lease = pool.acquire(key, password);
            if (lease != null) {
                return lease;
            }
            // the pool was retired by the reaper between lookup and acquire: take the fresh one
        }
    }

    /** Gives a connection back: kept when it is healthy and outside any transaction, closed otherwise. */
    void release(Lease lease) {
        lease.pool.release(lease);
    }

    /** Closes every idle connection of a database (after a credential rotation, a move or a delete). */
    void evict(String databaseId) {
        DatabasePool pool = pools.get(databaseId);
        if (pool != null) {
            pool.closeIdle(0);
        }
    }

    /**
     * Forgets a deleted database: closes its idle connections and, once none is in use (at once, or at a later reap),
     * drops its pool and gauges.
     */
    void forget(String databaseId) {
        DatabasePool pool = pools.get(databaseId);
        if (pool != null) {
            pool.closeIdle(0);
            dropIfUnused(pool);
        }
    }

    /** Retires a pool that no lease holds or waits for, and drops it with its gauges. */
    private void dropIfUnused(DatabasePool pool) {
        if (pool.retireIfUnused()) {
            pools.remove(pool.databaseId, pool);
            pool.removeGauges();
        }
    }

    int openConnections(String databaseId) {
        DatabasePool pool = pools.get(databaseId);
        return pool == null ? 0 : pool.open();
    }

    int idleConnections(String databaseId) {
        DatabasePool pool = pools.get(databaseId);
        return pool == null ? 0 : pool.idle();
    }

    private void reap() {
        long maxIdleNanos = config.idleConnectionTimeout().toNanos();
        for (DatabasePool pool : pools.values()) {
            pool.closeIdle(maxIdleNanos);
            dropIfUnused(pool);
        }
    }

    @Override
    public void close() {
        closed = true;
        reaper.shutdownNow();
        for (DatabasePool pool : pools.values()) {
            pool.closeIdle(0);
            pool.removeGauges();
        }
        pools.clear();
    }

    /** The connections of one database. Thread-safe; the lock is never held during network I/O. */
    final class DatabasePool {
        private final String databaseId;
        private final ReentrantLock lock = new ReentrantLock();
        private final Condition changed = lock.newCondition();
        private final Deque<Lease> idle = new ArrayDeque<>();
        private final List<Meter> gauges = new ArrayList<>();
        private int open;
        private int waiting;
        private boolean retired;

        DatabasePool(String databaseId) {
            this.databaseId = databaseId;
            gauges.add(Gauge.builder("palisade.broker.pool.connections", this, DatabasePool::open)
                    .description("backend connections of the SQL broker, open (idle + in use)")
                    .tag("database", databaseId)
                    .tag("state", "open")
                    .register(registry));
            gauges.add(Gauge.builder("palisade.broker.pool.connections", this, DatabasePool::idle)
                    .description("backend connections of the SQL broker, idle")
                    .tag("database", databaseId)
                    .tag("state", "idle")
                    .register(registry));
        }

        Lease acquire(Key key, String password) throws IOException {
            long deadline = System.nanoTime() + config.poolWaitTimeout().toNanos();
            Lease victim = null;
            lock.lock();
            try {
                while (true) {
                    if (retired) {
                        return null;
                    }
                    for (Iterator<Lease> it = idle.iterator(); it.hasNext(); ) {
                        Lease candidate = it.next();
                        if (candidate.key.equals(key)) {
                            it.remove();
                            return new Lease(this, key, candidate.connection, true);
                        }
                    }
                    if (open < config.poolSizePerDatabase()) {
                        open++;
                        break;
                    }
                    if (!idle.isEmpty()) {
                        victim = idle.removeLast();
                        break;
                    }
                    long remaining = deadline - System.nanoTime();
                    if (remaining <= 0) {
                        throw new PalisadeException(ErrorCode.TOO_MANY_CONNECTIONS, "Too many connections to this "
                                + "endpoint. Please try again later. (all " + open + " broker connections of this "
                                + "database are busy; " + waiting + " requests waiting)");
                    }
                    waiting++;
                    try {
                        changed.awaitNanos(remaining);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while waiting for a connection");
                    } finally {
                        waiting--;
                    }
                }
            } finally {
                lock.unlock();
            }
            if (victim != null) {
                victim.connection.close();
            }
            try {
                PgConnection connection = PgConnection.connect(key.endpoint(), startup(key), password,
                        config.connectTimeout());
                return new Lease(this, key, connection, false);
            } catch (IOException | RuntimeException e) {
                lock.lock();
                try {
                    open--;
                    changed.signal();
                } finally {
                    lock.unlock();
                }
                throw e;
            }
        }

        private Map<String, String> startup(Key key) {
            Map<String, String> startup = new LinkedHashMap<>();
            startup.put("user", key.user());
            startup.put("database", key.database());
            startup.put("client_encoding", "UTF8");
            startup.put("DateStyle", "ISO, MDY");
            startup.put("application_name", "palisade-broker");
            startup.put("statement_timeout", Long.toString(config.statementTimeout().toMillis()));
            return startup;
        }

        void release(Lease lease) {
            PgConnection connection = lease.connection;
            boolean keep = connection.isReusable() && connection.transactionStatus() == 'I' && !closed;
            if (!keep) {
                connection.close();
            }
            lock.lock();
            try {
                if (keep && !retired) {
                    lease.idleSince = System.nanoTime();
                    idle.addFirst(lease);
                } else {
                    if (keep) {
                        connection.close();
                    }
                    open--;
                }
                changed.signal();
            } finally {
                lock.unlock();
            }
        }

        void closeIdle(long olderThanNanos) {
            List<Lease> expired = new ArrayList<>();
            long now = System.nanoTime();
            lock.lock();
            try {
                for (Iterator<Lease> it = idle.iterator(); it.hasNext(); ) {
                    Lease lease = it.next();
                    if (now - lease.idleSince >= olderThanNanos) {
                        it.remove();
                        expired.add(lease);
                        open--;
                    }
                }
                if (!expired.isEmpty()) {
                    changed.signalAll();
                }
            } finally {
                lock.unlock();
            }
            expired.forEach(lease -> lease.connection.close());
        }

        boolean retireIfUnused() {
            lock.lock();
            try {
                if (open == 0 && waiting == 0) {
                    retired = true;
                }
                return retired;
            } finally {
                lock.unlock();
            }
        }

        void removeGauges() {
            gauges.forEach(registry::remove);
        }

        int open() {
            lock.lock();
            try {
                return open;
            } finally {
                lock.unlock();
            }
        }

        int idle() {
            lock.lock();
            try {
                return idle.size();
            } finally {
                lock.unlock();
            }
        }
    }
}
