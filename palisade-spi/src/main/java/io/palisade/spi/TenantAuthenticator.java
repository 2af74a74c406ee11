package io.palisade.spi;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * What the proxy and the broker check a client's login against on the host, before they touch a backend, take a
 * connection slot or wake a suspended instance. Implementations must not block the calling thread (the proxy calls
 * from an event loop) and must never wake, start or connect to anything.
 */
@FunctionalInterface
public interface TenantAuthenticator {
    /**
     * The tenant login of {@code databaseId}: the user and database names of its connection URL and its password.
     * Completes with {@code Optional.empty()} for an id that is unknown, deleted or not connectable (the caller answers
     * exactly as for a wrong password, in bytes and in timing).
     */
    CompletableFuture<Optional<TenantCredentials>> credentials(String databaseId);
}
