package io.palisade.spi;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * Finds where a database's PostgreSQL listens and which login it knows the tenant by, for the proxy and the broker. The
 * future completes once the instance can take connections (a suspended one is woken first), or with
 * {@code Optional.empty()} for an unknown or deleted id (the caller must answer exactly as for a wrong password).
 * Implementations must not block the calling thread.
 */
@FunctionalInterface
public interface BackendResolver {
    CompletableFuture<Optional<Backend>> resolve(String databaseId);

    /** Tells the control plane that a client used the database (for idle accounting). Default: ignored. */
    default void touch(String databaseId) {}
}
