package io.palisade.spi;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * What was read from the store about databases, kept at most a TTL, so that a busy client costs no store query per
 * request; the one place that knows how such memory stays correct.
 *
 * <p>Every value belongs to one database ({@code databaseOf}). {@link #forget} drops all of a database's values and
 * fences out loads that read the store before it: a load takes a {@link #stamp()} before reading and {@link #remember}
 * keeps its result only if no {@code forget} came in between, so a value never outlives the state it was read from.
 * Callers forget a database whenever what they keep about it may change (its lock is taken, its secrets rotate, its
 * connections are invalidated). Bounded at {@code maxEntries}: when full, expired values go and, if that is not enough,
 * nothing new is kept until they do. {@code forget} scans every entry: it runs on control operations, not per request.
 *
 * <p>Thread-safe: a concurrent map plus one generation counter.
 *
 * @param <K> what a value is looked up by (a database id, or a database id with something presented for it)
 * @param <V> the value kept
 */
public final class FencedCache<K, V> {
    private record Entry<V>(V value, long expiresAtNanos) {}

    private final Map<K, Entry<V>> entries = new ConcurrentHashMap<>();
    private final AtomicLong generation = new AtomicLong();
    private final Function<K, String> databaseOf;
    private final LongSupplier nanoTime;
    private final long ttlNanos;
    private final int maxEntries;

    public FencedCache(Function<K, String> databaseOf, Duration ttl, int maxEntries, LongSupplier nanoTime) {
        this.databaseOf = requireNonNull(databaseOf, "databaseOf is null");
        this.ttlNanos = requireNonNull(ttl, "ttl is null").toNanos();
        this.nanoTime = requireNonNull(nanoTime, "nanoTime is null");
        if (ttlNanos <= 0 || maxEntries <= 0) {
            throw new IllegalArgumentException("ttl and maxEntries must be positive: " + ttl + ", " + maxEntries);
        }
        this.maxEntries = maxEntries;
    }

    /** Taken before reading the store for a load that may be {@link #remember remembered}. */
    public long stamp() {
        return generation.get();
    }

    /** The value kept for {@code key}, if it was loaded less than the TTL ago and not forgotten since. */
    public Optional<V> find(K key) {
        Entry<V> entry = entries.get(requireNonNull(key, "key is null"));
        if (entry == null) {
            return Optional.empty();
        }
        if (nanoTime.getAsLong() - entry.expiresAtNanos() >= 0) {
            entries.remove(key, entry);
            return Optional.empty();
        }
        return Optional.of(entry.value());
    }

    /** Keeps a value loaded after {@code stamp}, unless its database was forgotten since. */
    public void remember(long stamp, K key, V value) {
        requireNonNull(key, "key is null");
        requireNonNull(value, "value is null");
        long now = nanoTime.getAsLong();
        if (entries.size() >= maxEntries) {
            entries.values().removeIf(e -> now - e.expiresAtNanos() >= 0);
            if (entries.size() >= maxEntries) {
                return;
            }
        }
        if (generation.get() != stamp) {
            return;
        }
        Entry<V> entry = new Entry<>(value, now + ttlNanos);
        entries.put(key, entry);
        // forget() bumps the generation before it removes: either it sees this entry or this sees its bump
        if (generation.get() != stamp) {
            entries.remove(key, entry);
        }
    }

    /** Drops every value of a database now; loads that began before this call are not kept. */
    public void forget(String databaseId) {
        requireNonNull(databaseId, "databaseId is null");
        generation.incrementAndGet();
        entries.keySet().removeIf(key -> databaseId.equals(databaseOf.apply(key)));
    }

    /** Entries held (fresh or not yet swept). */
    public int size() {
        return entries.size();
    }
}
