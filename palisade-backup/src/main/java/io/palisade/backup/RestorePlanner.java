package io.palisade.backup;

import static java.util.Objects.requireNonNull;

import io.palisade.backup.store.DataKey;
import io.palisade.pgwire.Lsn;
import io.palisade.spi.AdminAccess;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.store.ArchiveRecord;
import io.palisade.store.BackupCatalog;
import io.palisade.store.BaseBackupRecord;
import io.palisade.store.BaseBackupState;
import io.palisade.store.SecretBox;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Restores and forks, up to a prepared data directory: the restorable window of an archive, the base backup a target
 * needs (refusing targets outside the window with a user-facing error), the directory built under the staging
 * directory, and staging clean-up. Thread-safe (no state of its own).
 */
final class RestorePlanner {
    private static final Logger log = LoggerFactory.getLogger(RestorePlanner.class);

    private final BackupConfig config;
    private final BackupCatalog catalog;
    private final SecretBox master;
    private final ArchiveRestorer restorer;
    private final Consumer<String> syncArchiver;
    private final Function<ArchiveRecord, Optional<Instant>> liveCaughtUp;
    /** Where each operation's first attempt stopped staging WAL, for its retry without a target. */
    private final java.util.Map<String, Long> stagedEnds = new java.util.concurrent.ConcurrentHashMap<>();

    RestorePlanner(BackupConfig config, BackupCatalog catalog, SecretBox master, ArchiveRestorer restorer,
            Consumer<String> syncArchiver, Function<ArchiveRecord, Optional<Instant>> liveCaughtUp) {
        this.config = requireNonNull(config, "config is null");
        this.catalog = requireNonNull(catalog, "catalog is null");
        this.master = requireNonNull(master, "master is null");
        this.restorer = requireNonNull(restorer, "restorer is null");
        this.syncArchiver = requireNonNull(syncArchiver, "syncArchiver is null");
        this.liveCaughtUp = requireNonNull(liveCaughtUp, "liveCaughtUp is null");
    }

    BackupService.Window window(ArchiveRecord archive) {
        List<BaseBackupRecord> complete = catalog.baseBackups(archive.id()).stream()
                .filter(b -> b.state() == BaseBackupState.COMPLETE).toList();
        if (complete.isEmpty()) {
            return new BackupService.Window(Optional.empty(), Optional.empty());
        }
        Instant latest = liveCaughtUp.apply(archive).orElse(archive.caughtUpAt());
        Instant earliest = complete.getFirst().finishedAt();
        return new BackupService.Window(Optional.of(earliest), Optional.ofNullable(latest).filter(l -> !l.isBefore(earliest)));
    }



    /**
     * Checks that {@code target} lies inside the source's restorable window and builds a data directory for it under
     * the staging directory. The source keeps running. Fails with a clear, user-facing error for targets outside the
     * window.
     */
    Path prepareRestore(String sourceDatabaseId, RestoreTarget target, boolean stopAtTarget, String operationId,
            RestoreProgress progress) {
        ArchiveRecord archive = currentArchive(sourceDatabaseId);
        BaseBackupRecord backup = chooseBackup(sourceDatabaseId, archive, target);
        Path dir = config.stagingDir().resolve(operationId);
        BackupService.deleteQuietly(dir);
        long archived = archive.archivedLsn() == null ? 0 : archive.archivedLsn();
        // "replay to the end" (no commit after a time target) must not reach past what the first attempt staged: the
        // source kept running, and its later commits are after the target
        long upTo = stopAtTarget ? 0 : stagedEnds.getOrDefault(operationId, archived);
        try {
            long stagedEnd = restorer.build(archive.id(), DataKey.unwrap(archive.dataKeyEnc(), master), backup, target,
                    stopAtTarget, archived, upTo, dir, progress);
            if (stopAtTarget) {
                stagedEnds.put(operationId, stagedEnd);
            } else {
                stagedEnds.remove(operationId);
            }
            return dir;
        } catch (RuntimeException e) {
            BackupService.deleteQuietly(dir);
            throw e;
        }
    }

    /** Fails with a user-facing error unless {@code target} lies inside the database's restorable window. */
    void validateTarget(String databaseId, RestoreTarget target) {
        chooseBackup(databaseId, currentArchive(databaseId), target);
    }

    /**
     * The archive a restore from {@code databaseId} reads: the database's current one, or, for a database deleted with
     * {@code keep_backups_days}, the one kept for it (the caller has checked the account).
     */
    private ArchiveRecord currentArchive(String databaseId) {
        syncArchiver.accept(databaseId);
        String archiveId;
        try {
            archiveId = catalog.settings(databaseId).archiveId();
        } catch (IllegalStateException deleted) {
            archiveId = catalog.archivesOf(databaseId).stream().filter(a -> a.keepUntil() != null)
                    .reduce((a, b) -> b).map(ArchiveRecord::id).orElse(null);
        }
        if (archiveId == null) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + databaseId + " has no backups yet");
        }
        return catalog.findArchive(archiveId).orElseThrow();
    }

    private BaseBackupRecord chooseBackup(String databaseId, ArchiveRecord archive, RestoreTarget target) {
        BackupService.Window window = window(archive);
        if (window.earliest().isEmpty()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + databaseId
                    + " has no completed base backup yet; wait for its first backup or take one with POST /v1/databases/"
                    + databaseId + "/backups");
        }
        List<BaseBackupRecord> complete = catalog.baseBackups(archive.id()).stream()
                .filter(b -> b.state() == BaseBackupState.COMPLETE)
                .sorted(Comparator.comparing(BaseBackupRecord::finishedAt)).toList();
        Instant latest = window.latest().orElse(window.earliest().get());
        switch (target) {
            case RestoreTarget.Latest ignored -> {
                return complete.getLast();
            }
            case RestoreTarget.AtTime at -> {
                Instant time = at.time();
                if (time.isAfter(Instant.now())) {
                    throw PalisadeException.invalid("target_time " + time + " is in the future");
                }
                if (time.isBefore(window.earliest().get()) || time.isAfter(latest)) {
                    throw PalisadeException.invalid("target_time " + time + " is outside the restorable window of "
                            + databaseId + ": " + window.earliest().get() + " to " + latest);
                }
                return complete.stream().filter(b -> !b.finishedAt().isAfter(time)).reduce((a, b) -> b).orElseThrow();
            }
            case RestoreTarget.AtLsn at -> {
                long lsn = at.lsn().value();
                long archived = archive.archivedLsn() == null ? 0 : archive.archivedLsn();
                if (Long.compareUnsigned(lsn, archived) > 0) {
                    throw PalisadeException.invalid("target_lsn " + at.lsn() + " is after the latest archived position "
                            + new Lsn(archived));
                }
                return complete.stream().filter(b -> Long.compareUnsigned(b.endLsn(), lsn) <= 0).reduce((a, b) -> b)
                        .orElseThrow(() -> PalisadeException.invalid("target_lsn " + at.lsn()
                                + " is before the earliest base backup's consistent point "
                                + new Lsn(complete.getFirst().endLsn())));
            }
        }
    }

    /**
     * A data directory holding the running source's state now: a base backup with its WAL straight from the source
     * (fast checkpoint, no archive round trip), checked against its manifest. Used by forks of the current state.
     */
    Path prepareFork(AdminAccess source, String operationId, RestoreProgress progress) {
        Path dir = config.stagingDir().resolve(operationId);
        BackupService.deleteQuietly(dir);
        try {
            new ForkCopier(config.maxRateKbps()).copy(source, dir, progress);
            return dir;
        } catch (RuntimeException e) {
            BackupService.deleteQuietly(dir);
            throw e;
        }
    }

    /** Removes every staging directory but those of the given operations. */
    void discardStagingExcept(java.util.Set<String> operationIds) {
        if (!Files.isDirectory(config.stagingDir())) {
            return;
        }
        try (java.util.stream.Stream<Path> dirs = Files.list(config.stagingDir())) {
            dirs.filter(dir -> !operationIds.contains(dir.getFileName().toString())).forEach(BackupService::deleteQuietly);
        } catch (java.io.IOException e) {
            log.warn("cannot list {}: {}", config.stagingDir(), e.getMessage());
        }
    }

    /** Removes a staging directory left by a restore that did not finish. */
    void discardStaging(String operationId) {
        stagedEnds.remove(operationId);
        BackupService.deleteQuietly(config.stagingDir().resolve(operationId));
    }
}
