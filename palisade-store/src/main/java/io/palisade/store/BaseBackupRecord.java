package io.palisade.store;

import static java.util.Objects.requireNonNull;

import java.time.Instant;

/** A base backup in an archive; LSNs are PostgreSQL positions as unsigned 64-bit numbers. */
public record BaseBackupRecord(
        String id,
        String archiveId,
        BaseBackupState state,
        String trigger,
        Instant startedAt,
        Instant finishedAt,
        Long startLsn,
        Long endLsn,
        Integer timeline,
        long bytes,
        int parts,
        String error) {
    public BaseBackupRecord {
        requireNonNull(id, "id is null");
        requireNonNull(archiveId, "archiveId is null");
        requireNonNull(state, "state is null");
        requireNonNull(trigger, "trigger is null");
        requireNonNull(startedAt, "startedAt is null");
    }

    public static BaseBackupRecord started(String id, String archiveId, String trigger) {
        return new BaseBackupRecord(id, archiveId, BaseBackupState.RUNNING, trigger, Instant.now(), null, null, null, null,
                0, 0, null);
    }
}
