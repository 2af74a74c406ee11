package io.palisade.proxy;

import io.palisade.spi.Backend;
import io.palisade.spi.BackendResolver;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ServerLogin;
import io.palisade.spi.TenantAuthenticator;
import io.palisade.spi.TenantCredentials;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A hand-written control plane: a fixed map of database ids to endpoints and tenant logins, completed on another
 * thread after a short delay like a real lookup. Counts resolve calls (each would wake a suspended database) and
 * credential lookups. Thread-safe.
 */
final class FakeResolver implements BackendResolver, TenantAuthenticator {
    private final Map<String, Backend> backends = new ConcurrentHashMap<>();
    private final Map<String, TenantCredentials> logins = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> resolvesById = new ConcurrentHashMap<>();
    private final AtomicInteger resolves = new AtomicInteger();
    private final AtomicInteger lookups = new AtomicInteger();
    private final AtomicInteger touches = new AtomicInteger();

    FakeResolver put(String id, Endpoint endpoint, TenantCredentials login) {
        backends.put(id, Backend.direct(endpoint));
        logins.put(id, login);
        return this;
    }

    /** A database on a shared server, which knows the tenant's {@code app}/{@code app} login by other names. */
    FakeResolver putShared(String id, Endpoint endpoint, ServerLogin serverLogin, String password) {
        backends.put(id, new Backend(endpoint, "app", "app", serverLogin));
        logins.put(id, new TenantCredentials("app", "app", password));
        return this;
    }

    /** Replaces a tenant's login (a rotated password). */
    FakeResolver login(String id, TenantCredentials login) {
        logins.put(id, login);
        return this;
    }

    @Override
    public CompletableFuture<Optional<Backend>> resolve(String databaseId) {
        resolves.incrementAndGet();
        resolvesById.computeIfAbsent(databaseId, id -> new AtomicInteger()).incrementAndGet();
        return CompletableFuture.supplyAsync(() -> Optional.ofNullable(backends.get(databaseId)),
                CompletableFuture.delayedExecutor(1, TimeUnit.MILLISECONDS));
    }

    @Override
    public CompletableFuture<Optional<TenantCredentials>> credentials(String databaseId) {
        lookups.incrementAndGet();
        return CompletableFuture.supplyAsync(() -> Optional.ofNullable(logins.get(databaseId)),
                CompletableFuture.delayedExecutor(1, TimeUnit.MILLISECONDS));
    }

    @Override
    public void touch(String databaseId) {
        touches.incrementAndGet();
    }

    int resolves() {
        return resolves.get();
    }

    /** How often {@code id} was resolved: each time would have woken it, were it suspended. */
    int resolves(String id) {
        AtomicInteger count = resolvesById.get(id);
        return count == null ? 0 : count.get();
    }

    int lookups() {
        return lookups.get();
    }

    int touches() {
        return touches.get();
    }
}
