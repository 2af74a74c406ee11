package io.palisade.spi;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * Recent successful login checks on the host, so that a client sending request after request does not cost store
 * queries and a decryption each time: a secret presented for a database (a broker token or API key, a user and
 * password; kept by its SHA-256 only) that verified, with the login it verified for, kept at most {@link #TTL}. Only
 * successes are kept, keyed by the presented secret: a wrong secret or an unknown database always misses and goes to
 * the store, so it costs what it did before.
 *
 * <p>{@link #forget} drops every entry of a database at once and fences out loads that read the store before it: a
 * load takes a {@link #stamp()} before reading and {@link #remember} keeps its result only if no {@code forget} came in
 * between. Call it after every change of a database's secrets or existence (rotation, delete) and whenever its
 * connections are invalidated. Bounded at {@link #MAX_ENTRIES}: when full, expired entries go and, if that is not
 * enough, nothing new is kept until they do.
 *
 * <p>Thread-safe: a concurrent map plus one generation counter.
 */
public final class VerifiedLogins {
    public static final Duration TTL = Duration.ofSeconds(5);
    public static final int MAX_ENTRIES = 10_000;

    /** What was checked: a database and the SHA-256 of the secret presented for it. */
    private record Key(String databaseId, String secretHash) {
        Key {
            requireNonNull(databaseId, "databaseId is null");
            requireNonNull(secretHash, "secretHash is null");
        }
    }

    private record Entry(TenantCredentials credentials, long expiresAtNanos) {}

    private final Map<Key, Entry> entries = new ConcurrentHashMap<>();
    private final AtomicLong generation = new AtomicLong();
    private final LongSupplier nanoTime;
    private final long ttlNanos;

    public VerifiedLogins() {
        this(System::nanoTime, TTL);
    }

    public VerifiedLogins(LongSupplier nanoTime, Duration ttl) {
        this.nanoTime = requireNonNull(nanoTime, "nanoTime is null");
        this.ttlNanos = requireNonNull(ttl, "ttl is null").toNanos();
    }

    /** Taken before reading the store for a load that may be {@link #remember remembered}. */
    public long stamp() {
        return generation.get();
    }

    /** The login that the secret hashed to {@code secretHash} verified for, if that was less than the TTL ago. */
    public Optional<TenantCredentials> find(String databaseId, String secretHash) {
        Key key = new Key(databaseId, secretHash);
        Entry entry = entries.get(key);
        if (entry == null) {
            return Optional.empty();
        }
        if (nanoTime.getAsLong() - entry.expiresAtNanos() >= 0) {
            entries.remove(key, entry);
            return Optional.empty();
        }
        return Optional.of(entry.credentials());
    }

    /** Keeps a successful check loaded after {@code stamp}, unless the database was forgotten since. */
    public void remember(long stamp, String databaseId, String secretHash, TenantCredentials credentials) {
        requireNonNull(credentials, "credentials is null");
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
        Key key = new Key(databaseId, secretHash);
        Entry entry = new Entry(credentials, now + ttlNanos);
        entries.put(key, entry);
        // forget() bumps the generation before it removes: either it sees this entry or this sees its bump
        if (generation.get() != stamp) {
            entries.remove(key, entry);
        }
    }

    /** Drops every entry of a database now; loads that began before this call are not kept. */
    public void forget(String databaseId) {
        requireNonNull(databaseId, "databaseId is null");
        generation.incrementAndGet();
        entries.keySet().removeIf(key -> key.databaseId().equals(databaseId));
    }

    /** Entries held (fresh or not yet swept). */
    public int size() {
        return entries.size();
    }
}
