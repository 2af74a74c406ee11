package io.palisade.backup;

import static java.util.Objects.requireNonNull;

import io.palisade.backup.store.ArchiveStore;
import io.palisade.store.ArchiveRecord;
import io.palisade.store.BackupCatalog;
import io.palisade.store.BackupSettings;
import io.palisade.store.BaseBackupRecord;
import io.palisade.store.BaseBackupState;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Retention: keeps the newest complete base backup that finished before a database's window starts (so the window's
 * earliest moment stays restorable) and everything after it; deletes older base backups, the WAL only they needed,
 * older lineages whose last moment left the window, and kept archives of deleted databases when their time is up. A
 * restore never reads a half-deleted backup: it is older than the anchor every restore in the window uses (a reference to a
 * missing one is avoided by deleting objects first: if the store fails, the row stays and the next pass retries).
 * Thread-safe (no state of its own).
 */
final class Retention {
    private static final Logger log = LoggerFactory.getLogger(Retention.class);

    private final BackupConfig config;
    private final BackupCatalog catalog;
    private final ArchiveStore store;

    Retention(BackupConfig config, BackupCatalog catalog, ArchiveStore store) {
        this.config = requireNonNull(config, "config is null");
        this.catalog = requireNonNull(catalog, "catalog is null");
        this.store = requireNonNull(store, "store is null");
    }

    void deleteArchive(ArchiveRecord archive) {
        // objects first: if the store fails, the row stays and the next pass retries
        store.deletePrefix(ArchiveLayout.archivePrefix(archive.id()));
        catalog.deleteArchive(archive.id());
        log.info("deleted archive {} (database {})", archive.id(), archive.databaseId());
    }

    /**
     * Applies retention: keeps the newest complete base backup that finished before the window's start (so the window's
     * earliest moment stays restorable) and everything after it; deletes older base backups and the WAL only they
     * needed; deletes kept archives of deleted databases when their time is up. Returns what it deleted.
     */
    List<String> prune(Instant now) {
        List<String> deleted = new java.util.ArrayList<>();
        for (ArchiveRecord archive : catalog.archives()) {
            try {
                pruneOne(archive, now, deleted);
            } catch (RuntimeException e) {
                log.warn("retention of archive {} failed: {}", archive.id(), e.getMessage());
            }
        }
        if (!deleted.isEmpty()) {
            log.info("retention pruned {} objects", deleted.size());
        }
        return deleted;
    }

    private void pruneOne(ArchiveRecord archive, Instant now, List<String> deleted) {
        {
            if (archive.keepUntil() != null || archive.databaseId() == null) {
                // kept after its database was deleted: whole until its time is up
                if (archive.keepUntil() == null || archive.keepUntil().isBefore(now)) {
                    deleteArchive(archive);
                    deleted.add("archive " + archive.id());
                }
                return;
            }
            BackupSettings settings = catalog.settings(archive.databaseId());
            Duration retention = settings.retentionSeconds() == null ? config.retention()
                    : Duration.ofSeconds(settings.retentionSeconds());
            Instant windowStart = now.minus(retention);
            if (!archive.id().equals(settings.archiveId())
                    && (archive.caughtUpAt() == null || archive.caughtUpAt().isBefore(windowStart))) {
                // an older lineage of this database (it could not continue) whose last moment left the window
                deleteArchive(archive);
                deleted.add("archive " + archive.id());
                return;
            }
            List<BaseBackupRecord> backups = catalog.baseBackups(archive.id());
            Optional<BaseBackupRecord> anchor = backups.stream()
                    .filter(b -> b.state() == BaseBackupState.COMPLETE && !b.finishedAt().isAfter(windowStart))
                    .reduce((a, b) -> b);
            if (anchor.isEmpty()) {
                return;
            }
            for (BaseBackupRecord backup : backups) {
                boolean older = backup.startedAt().isBefore(anchor.get().startedAt());
                boolean failedAndOld = backup.state() == BaseBackupState.FAILED && backup.startedAt().isBefore(windowStart);
                if (older || failedAndOld) {
                    store.deletePrefix(ArchiveLayout.basePrefix(archive.id(), backup.id()));
                    catalog.deleteBaseBackup(backup.id());
                    deleted.add("base backup " + backup.id());
                }
            }
            long keepFrom = ArchiveLayout.segmentStart(anchor.get().startLsn());
            for (var object : store.list(ArchiveLayout.walPrefix(archive.id()))) {
                Optional<ArchiveLayout.WalChunk> chunk = ArchiveLayout.parseWalChunk(object.key());
                if (chunk.isPresent() && Long.compareUnsigned(chunk.get().end().value(), keepFrom) <= 0) {
                    store.delete(object.key());
                    deleted.add("wal " + object.key());
                }
            }
        }
    }
}
