package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Endpoint;
import java.security.SecureRandom;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Maps the random cancel keys the proxy hands to clients (in BackendKeyData) to the backend that really runs the
 * session and its real process id and key. Cancel requests arrive on a new plaintext connection without SNI, so this
 * is the only way to route them. It remembers which keys a cancel was forwarded for, so that a backend whose cancel may
 * still be on its way to the server is never handed to another client ({@link #unregister} says so, atomically with
 * {@link #cancel}: a cancel either finds the key and marks it before it is unregistered, or finds nothing and is
 * dropped). Thread-safe.
 */
final class CancelRegistry {
    /** Where a cancel for one proxied session must go. */
    record Target(String databaseId, Endpoint endpoint, int processId, int secretKey) {
        Target {
            requireNonNull(databaseId, "databaseId is null");
            requireNonNull(endpoint, "endpoint is null");
        }
    }

    /** The key pair handed to the client. */
    record ProxyKey(int processId, int secretKey) {
        long packed() {
            return ((long) processId << 32) | (secretKey & 0xFFFFFFFFL);
        }
    }

    private final SecureRandom random = new SecureRandom();
    private final ConcurrentHashMap<Long, Target> targets = new ConcurrentHashMap<>();
    /** Keys a cancel was forwarded with; an entry lives exactly as long as its key's target. */
    private final Set<Long> cancelled = ConcurrentHashMap.newKeySet();

    ProxyKey register(Target target) {
        requireNonNull(target, "target is null");
        while (true) {
            ProxyKey key = new ProxyKey(random.nextInt(1, Integer.MAX_VALUE), random.nextInt());
            if (targets.putIfAbsent(key.packed(), target) == null) {
                return key;
            }
        }
    }

    /** Forgets the key; returns whether a cancel was forwarded with it ({@link #cancel} found it) while it lived. */
    boolean unregister(ProxyKey key) {
        boolean[] wasCancelled = new boolean[1];
        targets.computeIfPresent(key.packed(), (packed, target) -> {
            wasCancelled[0] = cancelled.remove(packed);
            return null;
        });
        return wasCancelled[0];
    }

    /** Where a client's cancel for this key must go, if the key is registered; marks the key as cancelled. */
    Optional<Target> cancel(int processId, int secretKey) {
        Target[] found = new Target[1];
        targets.computeIfPresent(new ProxyKey(processId, secretKey).packed(), (packed, target) -> {
            cancelled.add(packed);
            found[0] = target;
            return target;
        });
        return Optional.ofNullable(found[0]);
    }

    int size() {
        return targets.size();
    }
}
