package io.palisade.proxy;

import static java.nio.charset.StandardCharsets.UTF_8;

import io.palisade.pgwire.ScramSecret;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The SCRAM secrets the proxy derived from tenant passwords, one per database id, so PBKDF2 runs once per password
 * rather than once per login. An entry is keyed by a digest of salt and password: a rotated password (or a changed
 * salt) misses and derives anew. Bounded (cleared when it grows past {@link #MAX_ENTRIES}). Thread-safe: a concurrent
 * map of immutable entries whose futures complete on the CPU executor, and an atomic moving average.
 */
final class SecretCache {
    static final int ITERATIONS = 4096;
    private static final int MAX_ENTRIES = 100_000;

    private record Entry(byte[] digest, CompletableFuture<ScramSecret> secret) {}

    /** The floor never exceeds this, whatever the measurements say. */
    private static final long MAX_FLOOR_NANOS = 200_000_000L;

    private final ConcurrentHashMap<String, Entry> byDatabase = new ConcurrentHashMap<>();
    private final Executor cpuExecutor;
    /** A moving average of how long one derivation takes here. */
    private final AtomicLong derivationNanos = new AtomicLong(5_000_000L);

    SecretCache(Executor cpuExecutor) {
        this.cpuExecutor = cpuExecutor;
    }

    /** The secret for {@code password} with {@code salt}; derived off the caller's thread when not cached. */
    CompletableFuture<ScramSecret> secret(String databaseId, String password, byte[] salt) {
        byte[] digest = digest(salt, password);
        Entry entry = byDatabase.get(databaseId);
        if (entry != null && MessageDigest.isEqual(entry.digest(), digest)
                && !entry.secret().isCompletedExceptionally()) {
            return entry.secret();
        }
        CompletableFuture<ScramSecret> derived;
        try {
            derived = CompletableFuture.supplyAsync(() -> timedDerive(password, salt), cpuExecutor);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        if (byDatabase.size() >= MAX_ENTRIES) {
            byDatabase.clear();
        }
        byDatabase.put(databaseId, new Entry(digest, derived));
        return derived;
    }

    /**
     * Measures a derivation on this machine (after a warm-up one) and starts the moving average from it; returns the
     * last secret derived.
     */
    ScramSecret calibrate(String password, byte[] salt) {
        ScramSecret.derive(password, salt, ITERATIONS);
        long fastest = Long.MAX_VALUE;
        ScramSecret secret = null;
        for (int i = 0; i < 2; i++) {
            long start = System.nanoTime();
            secret = ScramSecret.derive(password, salt, ITERATIONS);
            fastest = Math.min(fastest, System.nanoTime() - start);
        }
        derivationNanos.set(fastest);
        return secret;
    }

    /** Derives a secret and adds the time it took to the moving average. */
    ScramSecret timedDerive(String password, byte[] salt) {
        long start = System.nanoTime();
        ScramSecret secret = ScramSecret.derive(password, salt, ITERATIONS);
        long elapsed = System.nanoTime() - start;
        derivationNanos.updateAndGet(average -> (average * 7 + elapsed) / 8);
        return secret;
    }

    /**
     * How long after the credential lookup a proof may be answered at the earliest: twice a typical derivation, so a
     * login whose secret had to be derived first (cold cache) answers no later than one whose secret was cached or an
     * unknown id's. A real client spends about one derivation of its own before it sends the proof, so it never waits.
     */
    long proofFloorNanos() {
        return Math.min(2 * derivationNanos.get(), MAX_FLOOR_NANOS);
    }

    /** Forgets a database's secret (it was deleted). */
    void forget(String databaseId) {
        byDatabase.remove(databaseId);
    }

    static byte[] digest(byte[] salt, String password) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(salt);
            return sha.digest(password.getBytes(UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("SHA-256 is not available in this JDK", e);
        }
    }
}
