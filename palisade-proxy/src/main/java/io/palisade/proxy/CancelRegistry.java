package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Endpoint;
import java.security.SecureRandom;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Maps the random cancel keys the proxy hands to clients (in BackendKeyData) to the backend that really runs the
 * session and its real process id and key. Cancel requests arrive on a new plaintext connection without SNI, so this
 * is the only way to route them. Thread-safe.
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

    ProxyKey register(Target target) {
        requireNonNull(target, "target is null");
        while (true) {
            ProxyKey key = new ProxyKey(random.nextInt(1, Integer.MAX_VALUE), random.nextInt());
            if (targets.putIfAbsent(key.packed(), target) == null) {
                return key;
            }
        }
    }

    void unregister(ProxyKey key) {
        targets.remove(key.packed());
    }

    Optional<Target> lookup(int processId, int secretKey) {
        return Optional.ofNullable(targets.get(new ProxyKey(processId, secretKey).packed()));
    }

    int size() {
        return targets.size();
    }
}
