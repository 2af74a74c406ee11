package io.palisade.proxy;

import io.palisade.spi.Backend;
import io.palisade.spi.BackendResolver;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ServerLogin;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A hand-written resolver: a fixed map of database ids to endpoints, completed on another thread after a short delay
 * like a real control plane lookup. Thread-safe.
 */
final class FakeResolver implements BackendResolver {
    private final Map<String, Backend> backends = new ConcurrentHashMap<>();
    private final AtomicInteger resolves = new AtomicInteger();
    private final AtomicInteger touches = new AtomicInteger();

    FakeResolver put(String id, Endpoint endpoint) {
        backends.put(id, Backend.direct(endpoint));
        return this;
    }

    /** A database on a shared server, which knows the tenant's {@code app}/{@code app} login by other names. */
    FakeResolver putShared(String id, Endpoint endpoint, ServerLogin serverLogin) {
        backends.put(id, new Backend(endpoint, "app", "app", serverLogin));
        return this;
    }

    @Override
    public CompletableFuture<Optional<Backend>> resolve(String databaseId) {
        resolves.incrementAndGet();
        return CompletableFuture.supplyAsync(() -> Optional.ofNullable(backends.get(databaseId)),
                CompletableFuture.delayedExecutor(1, TimeUnit.MILLISECONDS));
    }

    @Override
    public void touch(String databaseId) {
        touches.incrementAndGet();
    }

    int resolves() {
        return resolves.get();
    }

    int touches() {
        return touches.get();
    }
}
