package io.palisade.spi;

import static java.util.Objects.requireNonNull;

import java.time.Instant;
import java.util.Map;
import java.util.Optional;

/**
 * A started, ready instance: PostgreSQL answered a protocol-level probe at {@code endpoint}. {@code details} carries
 * driver facts worth showing (accelerator, pid, boot phases in milliseconds). {@code serverLogin} is present on the shared
 * rungs: the role and database the server knows the tenant by.
 */
public record RunningInstance(
        String id, Endpoint endpoint, Optional<ServerLogin> serverLogin, Instant startedAt, Map<String, String> details) {
    public RunningInstance {
        requireNonNull(id, "id is null");
        requireNonNull(endpoint, "endpoint is null");
        requireNonNull(serverLogin, "serverLogin is null");
        requireNonNull(startedAt, "startedAt is null");
        details = Map.copyOf(requireNonNull(details, "details is null"));
    }

    /** An instance on a server of its own, which knows the tenant by the tenant's own names. */
    public RunningInstance(String id, Endpoint endpoint, Instant startedAt, Map<String, String> details) {
        this(id, endpoint, Optional.empty(), startedAt, details);
    }
}
