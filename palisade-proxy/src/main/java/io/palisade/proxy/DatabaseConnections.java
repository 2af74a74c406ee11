package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * Per-database connection counting (the {@code max-connections-per-database} limit) and per-database meters:
 * {@code palisade.proxy.connections} (gauge), {@code palisade.proxy.bytes.received} / {@code .sent} (counters, from the
 * client's and to the client's point of view: received = client to database), {@code palisade.proxy.handshake}
 * (timer from accept to ready-for-query). A database's meters live until {@link #forget} (its deletion), so
 * Prometheus series do not come and go with connections.
 * Thread-safe: acquire/release are synchronized (short critical sections); meters are updated lock-free.
 */
final class DatabaseConnections {
    private final MeterRegistry registry;
    private final int maxPerDatabase;
    private final Map<String, Slot> byDatabase = new HashMap<>();

    DatabaseConnections(MeterRegistry registry, int maxPerDatabase) {
        this.registry = requireNonNull(registry, "registry is null");
        this.maxPerDatabase = maxPerDatabase;
    }

    /** One database's counters; shared by its connections. */
    final class Slot {
        private final String databaseId;
        private int active;
        private boolean forgotten;
        private final Gauge gauge;
        private final Counter received;
        private final Counter sent;
        private final Timer handshake;

        private Slot(String databaseId) {
            this.databaseId = databaseId;
            this.gauge = Gauge.builder("palisade.proxy.connections", this, slot -> slot.activeCount())
                    .description("open client connections relayed to this database")
                    .tag("database", databaseId)
                    .strongReference(true)
                    .register(registry);
            this.received = Counter.builder("palisade.proxy.bytes.received")
                    .description("bytes from clients to this database")
                    .baseUnit("bytes")
                    .tag("database", databaseId)
                    .register(registry);
            this.sent = Counter.builder("palisade.proxy.bytes.sent")
                    .description("bytes from this database to clients")
                    .baseUnit("bytes")
                    .tag("database", databaseId)
                    .register(registry);
            this.handshake = Timer.builder("palisade.proxy.handshake")
                    .description("time from accept to ready-for-query, TLS and authentication included")
                    .tag("database", databaseId)
                    .publishPercentiles(0.5, 0.99)
                    .register(registry);
        }

        String databaseId() {
            return databaseId;
        }

        private int activeCount() {
            synchronized (DatabaseConnections.this) {
                return active;
            }
        }

        void received(long bytes) {
            received.increment(bytes);
        }

        void sent(long bytes) {
            sent.increment(bytes);
        }

        void handshakeDone(Duration elapsed) {
            handshake.record(elapsed);
        }
    }

    /** A slot for one more connection, or null when the database is at its limit. */
    synchronized Slot tryAcquire(String databaseId) {
        Slot slot = byDatabase.computeIfAbsent(databaseId, Slot::new);
        if (slot.active >= maxPerDatabase) {
            return null;
        }
        slot.active++;
        return slot;
    }

    synchronized void release(Slot slot) {
        slot.active--;
        if (slot.active <= 0 && slot.forgotten) {
            remove(slot);
        }
    }

    /**
     * Drops a database's meters (call when it is deleted): now, or when its last open connection closes. Meters are
     * created only for databases the resolver found, so the set is bounded by the number of live databases.
     */
    synchronized void forget(String databaseId) {
        Slot slot = byDatabase.get(databaseId);
        if (slot == null) {
            return;
        }
        slot.forgotten = true;
        if (slot.active <= 0) {
            remove(slot);
        }
    }

    private void remove(Slot slot) {
        if (byDatabase.get(slot.databaseId) == slot) {
            byDatabase.remove(slot.databaseId);
        }
        registry.remove(slot.gauge);
        registry.remove(slot.received);
        registry.remove(slot.sent);
        registry.remove(slot.handshake);
    }

    synchronized int active(String databaseId) {
        Slot slot = byDatabase.get(databaseId);
        return slot == null ? 0 : slot.active;
    }

    int maxPerDatabase() {
        return maxPerDatabase;
    }
}
