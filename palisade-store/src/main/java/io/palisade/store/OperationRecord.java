package io.palisade.store;

import static java.util.Objects.requireNonNull;

import java.time.Instant;

/**
 * A restore, fork or on-demand backup: what it made or changed ({@code databaseId}), from where ({@code sourceId}), to
 * which target ({@code target}: {@code latest}, a time or an LSN), its progress and outcome. {@code resultId}: for an
 * in-place restore, the database that holds the pre-restore state.
 */
public record OperationRecord(
        String id,
        OperationKind kind,
        String accountId,
        String databaseId,
        String sourceId,
        String target,
        OperationState state,
        String phase,
        long bytes,
        long walBytes,
        String resultId,
        String error,
        Instant startedAt,
        Instant finishedAt) {
    public OperationRecord {
        requireNonNull(id, "id is null");
        requireNonNull(kind, "kind is null");
        requireNonNull(accountId, "accountId is null");
        requireNonNull(databaseId, "databaseId is null");
        requireNonNull(target, "target is null");
        requireNonNull(state, "state is null");
        requireNonNull(startedAt, "startedAt is null");
    }

    public static OperationRecord started(String id, OperationKind kind, String accountId, String databaseId,
            String sourceId, String target) {
        return new OperationRecord(id, kind, accountId, databaseId, sourceId, target, OperationState.RUNNING, "queued", 0, 0,
                null, null, Instant.now(), null);
    }
}
