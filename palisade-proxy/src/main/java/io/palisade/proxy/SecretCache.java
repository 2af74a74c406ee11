package io.palisade.proxy;

import static java.nio.charset.StandardCharsets.UTF_8;

import io.palisade.pgwire.ScramSecret;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;

/**
 * The SCRAM secrets the proxy derived from tenant passwords, one per database id, so PBKDF2 runs once per password
 * rather than once per login. An entry is keyed by a digest of salt and password: a rotated password (or a changed
 * salt) misses and derives anew. Bounded (cleared when it grows past {@link #MAX_ENTRIES}). Thread-safe: a concurrent
 * map of immutable entries whose futures complete on the CPU executor.
 */
final class SecretCache {
    static final int ITERATIONS = 4096;
    private static final int MAX_ENTRIES = 100_000;

    private record Entry(byte[] digest, CompletableFuture<ScramSecret> secret) {}

    private final ConcurrentHashMap<String, Entry> byDatabase = new ConcurrentHashMap<>();
    private final Executor cpuExecutor;

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
            derived = CompletableFuture.supplyAsync(() -> ScramSecret.derive(password, salt, ITERATIONS), cpuExecutor);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        if (byDatabase.size() >= MAX_ENTRIES) {
            byDatabase.clear();
        }
        byDatabase.put(databaseId, new Entry(digest, derived));
        return derived;
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
