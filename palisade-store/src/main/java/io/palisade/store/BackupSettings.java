package io.palisade.store;

import static java.util.Objects.requireNonNull;

/** A database's backup settings; {@code null} numbers mean the server's default. {@code archiveId} is its lineage now. */
public record BackupSettings(Durability durability, Integer retentionSeconds, Integer baseBackupIntervalSeconds,
        String archiveId) {
    public BackupSettings {
        requireNonNull(durability, "durability is null");
    }
}
