package io.palisade.store;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Plan;
import io.palisade.spi.Rung;
import java.time.Instant;
import java.util.Optional;

/**
 * One move of a database between rungs, as the store keeps it: where from and to (rung and plan), how far it got, its
 * progress, how long the cutover held the tenant's connections, and a detail (the failure, or what the phase is doing).
 */
public record MoveRecord(
        String id,
        String databaseId,
        String accountId,
        Rung from,
        Rung to,
        Plan fromPlan,
        Plan toPlan,
        MovePhase phase,
        Optional<String> detail,
        long copiedBytes,
        long totalBytes,
        long lagBytes,
        Optional<Long> cutoverMillis,
        Instant startedAt,
        Instant updatedAt,
        Optional<Instant> finishedAt) {
    public MoveRecord {
        requireNonNull(id, "id is null");
        requireNonNull(databaseId, "databaseId is null");
        requireNonNull(accountId, "accountId is null");
        requireNonNull(from, "from is null");
        requireNonNull(to, "to is null");
        requireNonNull(fromPlan, "fromPlan is null");
        requireNonNull(toPlan, "toPlan is null");
        requireNonNull(phase, "phase is null");
        requireNonNull(detail, "detail is null");
        requireNonNull(cutoverMillis, "cutoverMillis is null");
        requireNonNull(startedAt, "startedAt is null");
        requireNonNull(updatedAt, "updatedAt is null");
        requireNonNull(finishedAt, "finishedAt is null");
    }
}
