package io.palisade.spi;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.Optional;
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
 * <p>Thread-safe: a {@link FencedCache}.
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

    private final FencedCache<Key, TenantCredentials> cache;

    public VerifiedLogins() {
        this(System::nanoTime, TTL);
    }

    public VerifiedLogins(LongSupplier nanoTime, Duration ttl) {
        this.cache = new FencedCache<>(Key::databaseId, ttl, MAX_ENTRIES, nanoTime);
    }

    /** Taken before reading the store for a load that may be {@link #remember remembered}. */
    public long stamp() {
        return cache.stamp();
    }

    /** The login that the secret hashed to {@code secretHash} verified for, if that was less than the TTL ago. */
    public Optional<TenantCredentials> find(String databaseId, String secretHash) {
        return cache.find(new Key(databaseId, secretHash));
    }

    /** Keeps a successful check loaded after {@code stamp}, unless the database was forgotten since. */
    public void remember(long stamp, String databaseId, String secretHash, TenantCredentials credentials) {
        cache.remember(stamp, new Key(databaseId, secretHash), credentials);
    }

    /** Drops every entry of a database now; loads that began before this call are not kept. */
    public void forget(String databaseId) {
        cache.forget(databaseId);
    }

    /** Entries held (fresh or not yet swept). */
    public int size() {
        return cache.size();
    }
}
