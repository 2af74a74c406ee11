package io.palisade.api;

import io.palisade.spi.Backend;
import io.palisade.spi.FencedCache;
import java.time.Duration;
import java.util.Optional;
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
 * <p>Thread-safe: a {@link FencedCache}.
 */
final class RunningBackends {
    static final Duration TTL = Duration.ofSeconds(5);
    static final int MAX_ENTRIES = 10_000;

    private final FencedCache<String, Backend> cache;

    RunningBackends() {
        this(System::nanoTime, TTL);
    }

    RunningBackends(LongSupplier nanoTime, Duration ttl) {
        this.cache = new FencedCache<>(databaseId -> databaseId, ttl, MAX_ENTRIES, nanoTime);
    }

    /** Taken before reading the store for a load that may be {@link #remember remembered}. */
    long stamp() {
        return cache.stamp();
    }

    /** Where the database listened when it was last read running, if that was less than the TTL ago. */
    Optional<Backend> find(String databaseId) {
        return cache.find(databaseId);
    }

    /** Keeps a running database's backend loaded after {@code stamp}, unless something was forgotten since. */
    void remember(long stamp, String databaseId, Backend backend) {
        cache.remember(stamp, databaseId, backend);
    }

    /** Drops a database's entry now; loads that began before this call are not kept. */
    void forget(String databaseId) {
        cache.forget(databaseId);
    }
}
