package io.palisade.store;

import static java.util.Objects.requireNonNull;

import java.time.Instant;

/**
 * One WAL lineage of a database in the archive. {@code archivedLsn}: everything before it is durable in the archive;
 * {@code caughtUpAt}: the last moment the archive held all the WAL the server had written (the latest restorable
 * moment). {@code dataKeyEnc}: the archive's data key, wrapped by the master key. {@code databaseId} is null once the
 * database was deleted with kept backups.
 */
public record ArchiveRecord(
        String id,
        String databaseId,
        String accountId,
        String dataKeyEnc,
        String slotName,
        String systemId,
        Integer timeline,
        Long archivedLsn,
        Instant caughtUpAt,
        String lastError,
        Instant lastErrorAt,
        long failures,
        Instant keepUntil,
        Instant createdAt) {
    public ArchiveRecord {
        requireNonNull(id, "id is null");
        requireNonNull(accountId, "accountId is null");
        requireNonNull(dataKeyEnc, "dataKeyEnc is null");
        requireNonNull(slotName, "slotName is null");
        requireNonNull(createdAt, "createdAt is null");
    }

    public static ArchiveRecord create(String id, String databaseId, String accountId, String dataKeyEnc, String slotName) {
        return new ArchiveRecord(id, databaseId, accountId, dataKeyEnc, slotName, null, null, null, null, null, null, 0,
                null, Instant.now());
    }

    @Override
    public String toString() {
        return "ArchiveRecord[" + id + ", database=" + databaseId + ", archivedLsn=" + archivedLsn + "]";
    }
}
