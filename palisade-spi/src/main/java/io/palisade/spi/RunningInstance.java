package io.palisade.spi;

import static java.util.Objects.requireNonNull;

import java.time.Instant;
import java.util.Map;

/**
 * A started, ready instance: PostgreSQL answered a protocol-level probe at {@code endpoint}. {@code details} carries
 * driver facts worth showing (accelerator, pid, boot phases in milliseconds).
 */
public record RunningInstance(String id, Endpoint endpoint, Instant startedAt, Map<String, String> details) {
    public RunningInstance {
        requireNonNull(id, "id is null");
        requireNonNull(endpoint, "endpoint is null");
        requireNonNull(startedAt, "startedAt is null");
        details = Map.copyOf(requireNonNull(details, "details is null"));
    }
}
