package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Backend;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * Where running databases listened when last read from the store, so that a busy client of the broker or the proxy
 * costs no store query per request to route: kept at most {@link #TTL}, bounded at {@link #MAX_ENTRIES}.
 *
 * <p>Every change of a database's state or endpoint happens under its lock ({@link DatabaseService#withLock}), and the
 * lock calls {@link #forget} when it is taken and again when it is released. A load takes a {@link #stamp()} before
 * reading the store and {@link #remember} keeps its result only if no {@code forget} came in between; the caller
 * neither serves nor loads from here while the database's lock is held. So an entry never outlives the state it was
 * read from, apart from changes made to the store by another process (bounded by the TTL).
 *
 * <p>Thread-safe: a concurrent map plus one generation counter.
 */
final class RunningBackends {
    static final Duration TTL = Duration.ofSeconds(5);
    static final int MAX_ENTRIES = 10_000;

    private record Entry(Backend backend, long expiresAtNanos) {}

    private final Map<String, Entry> entries = new ConcurrentHashMap<>();
    private final AtomicLong generation = new AtomicLong();
    private final LongSupplier nanoTime;
    private final long ttlNanos;

    RunningBackends() {
        this(System::nanoTime, TTL);
    }

    RunningBackends(LongSupplier nanoTime, Duration ttl) {
        this.nanoTime = requireNonNull(nanoTime, "nanoTime is null");
        this.ttlNanos = requireNonNull(ttl, "ttl is null").toNanos();
    }

    /** Taken before reading the store for a load that may be {@link #remember remembered}. */
    long stamp() {
        return generation.get();
    }

    /** Where the database listened when it was last read running, if that was less than the TTL ago. */
    Optional<Backend> find(String databaseId) {
        Entry entry = entries.get(databaseId);
        if (entry == null) {
            return Optional.empty();
        }
        if (nanoTime.getAsLong() - entry.expiresAtNanos() >= 0) {
            entries.remove(databaseId, entry);
            return Optional.empty();
        }
        return Optional.of(entry.backend());
    }

    /** Keeps a running database's backend loaded after {@code stamp}, unless something was forgotten since. */
    void remember(long stamp, String databaseId, Backend backend) {
        requireNonNull(databaseId, "databaseId is null");
        requireNonNull(backend, "backend is null");
        long now = nanoTime.getAsLong();
        if (entries.size() >= MAX_ENTRIES) {
            entries.values().removeIf(e -> now - e.expiresAtNanos() >= 0);
            if (entries.size() >= MAX_ENTRIES) {
                return;
            }
        }
        if (generation.get() != stamp) {
            return;
        }
        Entry entry = new Entry(backend, now + ttlNanos);
        entries.put(databaseId, entry);
        // forget() bumps the generation before it removes: either it sees this entry or this sees its bump
        if (generation.get() != stamp) {
            entries.remove(databaseId, entry);
        }
    }

    /** Drops a database's entry now; loads that began before this call are not kept. */
    void forget(String databaseId) {
        requireNonNull(databaseId, "databaseId is null");
        generation.incrementAndGet();
        entries.remove(databaseId);
    }
}
