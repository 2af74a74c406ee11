package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.backup.BackupService;
import io.palisade.backup.RestoreProgress;
import io.palisade.backup.RestoreTarget;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.RunningInstance;
import io.palisade.store.BackupCatalog;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.OperationKind;
import io.palisade.store.OperationRecord;
import io.palisade.store.OperationState;
import io.palisade.store.SecretBox;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The restore use cases: restore as a new database, restore in place (keeping the pre-restore state as a database of
 * its own), fork, on-demand base backup; each recorded as an operation with progress, and redone after a crash.
 * Thread-safe; work on one database runs under the control plane's per-id lock.
 */
public final class RestoreService {
    private static final Logger log = LoggerFactory.getLogger(RestoreService.class);
    /** A restore may stop at a time after the last commit: PostgreSQL then says so, and the end of WAL is that state. */
    private static final String TARGET_NOT_REACHED = "recovery ended before configured recovery target was reached";

    /** An in-place restore's outcome: the restored database and the one that keeps the state before it. */
    public record InPlace(DatabaseRecord database, DatabaseService.Created preRestore, OperationRecord operation) {}

    private final DatabaseService databases;
    private final BackupService backups;
    private final BackupCatalog catalog;

    public RestoreService(DatabaseService databases, BackupService backups) {
        this.databases = requireNonNull(databases, "databases is null");
        this.backups = requireNonNull(backups, "backups is null");
        this.catalog = databases.store().backupCatalog();
        databases.setBackups(backups);
        databases.setInterruptedRestores(this::redoInterrupted);
    }

    public BackupService backups() {
        return backups;
    }

    DatabaseService databases() {
        return databases;
    }

    java.util.List<OperationRecord> operations(String databaseId) {
        return catalog.operationsOf(databaseId);
    }

    java.util.Map<String, Object> settings(String databaseId) {
        io.palisade.store.BackupSettings settings = catalog.settings(databaseId);
        java.util.Map<String, Object> out = new java.util.LinkedHashMap<>();
        out.put("durability", settings.durability().wireName());
        out.put("retention_seconds", settings.retentionSeconds() == null ? backups.config().retention().toSeconds()
                : settings.retentionSeconds());
        out.put("base_backup_interval_seconds", settings.baseBackupIntervalSeconds() == null
                ? backups.config().baseBackupInterval().toSeconds() : settings.baseBackupIntervalSeconds());
        return out;
    }

    /** Changes durability, retention or the base backup interval; absent fields keep their value. */
    java.util.Map<String, Object> updateSettings(String accountId, String id, io.palisade.store.Durability durability,
            Integer retentionSeconds, Integer intervalSeconds) {
        DatabaseRecord db = databases.get(accountId, id);
        checkSourceUsable(db);
        databases.withLock(id, () -> {
            io.palisade.store.BackupSettings current = catalog.settings(id);
            backups.setDurability(id, durability == null ? current.durability() : durability,
                    retentionSeconds == null ? current.retentionSeconds() : retentionSeconds,
                    intervalSeconds == null ? current.baseBackupIntervalSeconds() : intervalSeconds);
            return null;
        });
        return settings(id);
    }

    /** {@code POST /v1/databases} with {@code restore}: a new database from a source's archive. */
    public DatabaseService.Created restoreAsNew(String accountId, CreateDatabaseRequest request) {
        RestoreRequest restore = request.restore();
        if (restore.from() == null) {
            throw PalisadeException.invalid("restore.from must name the source database");
        }
        RestoreTarget target = restore.target();
        Optional<DatabaseRecord> found = databases.store().find(accountId, restore.from());
        if (found.isEmpty()) {
            // deleted with keep_backups_days: its kept archive still restores (another account's is "not found")
            Optional<Boolean> keptFromVm = backups.keptArchiveFromVm(accountId, restore.from());
            if (keptFromVm.isEmpty()) {
                throw DatabaseService.notFound(restore.from());
            }
            backups.validateTarget(restore.from(), target);
            CreateDatabaseRequest create = request.withDefaults(restore.from() + "-restored",
                    keptFromVm.get() ? "vm" : null, null);
            checkRung(restore.from(), keptFromVm.get(), create);
            return createWith(accountId, create, OperationKind.RESTORE, restore.from(), keptFromVm.get(), target);
        }
        DatabaseRecord source = found.get();
        checkSourceUsable(source);
        // fail on a target outside the window before anything is created
        backups.validateTarget(source.id(), target);
        CreateDatabaseRequest create = request.withDefaults(source.label() + "-restored", source.isolation().wireName(),
                source.plan().name());
        boolean fromVm = dataFromVm(source);
        checkRung(source.id(), fromVm, create);
        return createWith(accountId, create, OperationKind.RESTORE, source.id(), fromVm, target);
    }

    /** {@code POST /v1/databases/{id}/fork}: a new database from the source's current state or a past time. */
    public DatabaseService.Created fork(String accountId, String sourceId, CreateDatabaseRequest request, RestoreTarget target) {
        DatabaseRecord source = databases.get(accountId, sourceId);
        checkSourceUsable(source);
        if (!(target instanceof RestoreTarget.Latest)) {
            backups.validateTarget(source.id(), target);
        } else if (source.state() != DatabaseState.RUNNING) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + sourceId + " is " + source.state().wireName()
                    + "; a fork of its current state needs it running (or give a target_time)");
        }
        CreateDatabaseRequest create = request.withDefaults(source.label() + "-fork", source.isolation().wireName(),
                source.plan().name());
        boolean fromVm = dataFromVm(source);
        checkRung(source.id(), fromVm, create);
        return createWith(accountId, create, OperationKind.FORK, source.id(), fromVm, target);
    }

    private boolean dataFromVm(DatabaseRecord source) {
        return source.isolation() == io.palisade.spi.Rung.VM || catalog.dataFromVm(source.id());
    }

    /**
     * Data that ran inside a vm guest may have been changed by the guest's root in any way (a superuser tenant role,
     * server-side libraries, catalog entries): it never goes to a rung that runs servers on the host itself.
     */
    private void checkRung(String sourceId, boolean fromVm, CreateDatabaseRequest create) {
        io.palisade.spi.Rung isolation = create.isolation() == null ? databases.defaultIsolation()
                : io.palisade.spi.Rung.fromWire(create.isolation());
        if (fromVm && isolation != io.palisade.spi.Rung.VM) {
            throw new PalisadeException(ErrorCode.CONFLICT, "the data of " + sourceId + " ran inside a vm guest, whose"
                    + " root could have changed its roles, catalogs and files; it can be restored or forked only onto the"
                    + " vm rung (\"isolation\": \"vm\"), not onto " + isolation);
        }
    }

    private DatabaseService.Created createWith(String accountId, CreateDatabaseRequest create, OperationKind kind,
            String sourceId, boolean fromVm, RestoreTarget target) {
        String operationId = SecretBox.randomId("op");
        String id = databases.newId();
        // the operation first: after a crash, a provisioning database with it is restored again, never made empty
        catalog.insertOperation(OperationRecord.started(operationId, kind, accountId, id, sourceId, target.describe()));
        try {
            return databases.create(accountId, create, id, record -> {
                if (fromVm) {
                    catalog.markDataFromVm(record.id());
                }
                return run(operationId, record, kind, sourceId, target);
            });
        } catch (RuntimeException e) {
            catalog.finishOperation(operationId, OperationState.FAILED, null, e.getMessage(), Instant.now());
            throw e;
        }
    }

    private DatabaseRecord run(String operationId, DatabaseRecord record, OperationKind kind, String sourceId,
            RestoreTarget target) {
        RestoreProgress progress = progress(operationId);
        boolean fromSource = kind == OperationKind.FORK && target instanceof RestoreTarget.Latest;
        DatabaseRecord result = provisionFrom(record, () -> fromSource
                ? backups.prepareFork(sourceId, operationId, progress)
                : backups.prepareRestore(sourceId, target, true, operationId, progress));
        if (result.state() == DatabaseState.FAILED && !fromSource && !(target instanceof RestoreTarget.Latest)
                && result.stateReason() != null && result.stateReason().contains(TARGET_NOT_REACHED)) {
            // no commit follows the target time in the archive, so its end is the state at the target
            log.info("{}: no commit after {} in the archive; replaying it to its end", record.id(), target.describe());
            databases.store().transition(record.id(), DatabaseState.PROVISIONING, null);
            result = provisionFrom(record, () -> backups.prepareRestore(sourceId, target, false, operationId,
                    progress));
        }
        backups.discardStaging(operationId);
        finish(operationId, result, null);
        return result;
    }

    /** {@code POST /v1/databases/{id}/restore}: same id, URL and credentials; the old state becomes a new database. */
    public InPlace restoreInPlace(String accountId, String id, RestoreTarget target) {
        DatabaseRecord current = databases.get(accountId, id);
        checkSourceUsable(current);
        if (current.state() != DatabaseState.RUNNING && current.state() != DatabaseState.STOPPED
                && current.state() != DatabaseState.FAILED) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is " + current.state().wireName()
                    + "; restore it in place when it is running, stopped or failed");
        }
        backups.validateTarget(id, target);
        String operationId = SecretBox.randomId("op");
        OperationRecord operation = OperationRecord.started(operationId, OperationKind.RESTORE_IN_PLACE, accountId, id, id,
                target.describe());
        catalog.insertOperation(operation);
        RestoreProgress progress = progress(operationId);
        Path dir;
        try {
            // build the restored directory while the database keeps serving
            dir = backups.prepareRestore(id, target, true, operationId, progress);
        } catch (RuntimeException e) {
            backups.discardStaging(operationId);
            catalog.finishOperation(operationId, OperationState.FAILED, null, e.getMessage(), Instant.now());
            throw e;
        }
        return databases.withLock(id, () -> swap(accountId, id, target, dir, operationId, progress));
    }

    private InPlace swap(String accountId, String id, RestoreTarget target, Path dir, String operationId,
            RestoreProgress progress) {
        DatabaseRecord current = databases.store().find(id).orElseThrow(() -> DatabaseService.notFound(id));
        IsolationDriver driver = databases.driver(current);
        progress.update("stopping the database", 0, 0);
        databases.stopArchiving(id);
        databases.invalidateConnections(id);
        driver.stop(id);
        DatabaseState wasState = current.state();
        // from here a crash is finished by redoInterrupted: the id is provisioning, the copy is stopped
        databases.store().transition(id, DatabaseState.PROVISIONING, "restoring to " + target.describe());
        // the pre-restore state becomes its own database: the instance and the archive move to it
        String keepLabel = truncate(current.label() + "-before-restore");
        DatabaseService.Created before;
        // a database whose instance was lost (the reason to restore it) has no state to keep, only its archive
        boolean hasInstance = driver.listInstances().contains(id);
        String copyId = databases.newId();
        try {
            // the copy's id is recorded before the copy exists, so a crash at any point can be finished
            catalog.finishOperation(operationId, OperationState.RUNNING, copyId, null, Instant.now());
            before = insertCopy(current, copyId, keepLabel);
            if (hasInstance) {
                driver.rename(id, copyId);
            }
        } catch (RuntimeException e) {
            // nothing moved yet: put the database back as it was, running again if it ran
            log.warn("in-place restore of {} failed before the swap, rolling back: {}", id, e.getMessage());
            backups.discardStaging(operationId);
            databases.store().find(copyId).ifPresent(copy -> databases.store().delete(copyId));
            catalog.finishOperation(operationId, OperationState.FAILED, null, e.getMessage(), Instant.now());
            rollBackSwap(current, wasState);
            throw e;
        }
        String beforeId = before.database().id();
        DatabaseRecord beforeRunning;
        DatabaseRecord restored;
        try {
            backups.handOverArchive(id, beforeId);
            if (hasInstance) {
                progress.update("starting the pre-restore copy as " + beforeId, 0, 0);
                beforeRunning = startCopy(before.database(), before.password());
            } else {
                beforeRunning = databases.store().transition(beforeId, DatabaseState.FAILED, "holds the backups of "
                        + id + " from before its in-place restore; it has no instance (" + id + "'s was lost): restore"
                        + " from it with POST /v1/databases {\"restore\": {\"from\": \"" + beforeId + "\"}}, or delete it");
            }
            restored = provisionFrom(databases.store().find(id).orElseThrow(), () -> dir);
            if (restored.state() == DatabaseState.FAILED && restored.stateReason() != null
                    && restored.stateReason().contains(TARGET_NOT_REACHED)) {
                databases.store().transition(id, DatabaseState.PROVISIONING, null);
                restored = provisionFrom(restored, () -> backups.prepareRestore(beforeId, target, false,
                        operationId, progress));
            }
        } catch (RuntimeException e) {
            // the state before the restore is safe in the copy; the id is failed, not stuck provisioning
            log.warn("in-place restore of {} failed after its state moved to {}: {}", id, beforeId, e.getMessage());
            backups.discardStaging(operationId);
            databases.store().find(id).filter(db -> db.state() == DatabaseState.PROVISIONING).ifPresent(db ->
                    databases.store().transition(id, DatabaseState.FAILED, "in-place restore failed: " + e.getMessage()
                            + "; the state before it is database " + beforeId));
            catalog.finishOperation(operationId, OperationState.FAILED, beforeId, e.getMessage(), Instant.now());
            throw e;
        }
        backups.discardStaging(operationId);
        finish(operationId, restored, beforeId);
        return new InPlace(restored, new DatabaseService.Created(beforeRunning, before.password(), before.brokerToken()),
                catalog.findOperation(operationId).orElseThrow());
    }

    private static String truncate(String label) {
        return label.length() > 63 ? label.substring(0, 63) : label;
    }

    /** {@code POST /v1/databases/{id}/backups}: a base backup now. */
    public io.palisade.store.BaseBackupRecord backupNow(String accountId, String id) {
        DatabaseRecord db = databases.get(accountId, id);
        if (db.state() != DatabaseState.RUNNING) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is " + db.state().wireName()
                    + "; its latest state is already in the archive, and a base backup needs it running");
        }
        checkSourceUsable(db);
        String operationId = SecretBox.randomId("op");
        catalog.insertOperation(OperationRecord.started(operationId, OperationKind.BACKUP, accountId, id, id, "now"));
        try {
            var backup = backups.backupNow(id, "on-demand", progress(operationId));
            catalog.operationProgress(operationId, "done", backup.bytes(), 0);
            catalog.finishOperation(operationId, OperationState.SUCCEEDED, backup.id(), null, Instant.now());
            return backup;
        } catch (RuntimeException e) {
            catalog.finishOperation(operationId, OperationState.FAILED, null, e.getMessage(), Instant.now());
            throw e;
        }
    }

    private void checkSourceUsable(DatabaseRecord db) {
        if (db.state() == DatabaseState.DELETING) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + db.id() + " is being deleted");
        }
        if (!databases.driver(db).supportsRestore()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "the " + db.isolation() + " rung has no backups, restore or fork"
                    + " yet; databases on the process and vm rungs have them");
        }
    }

    private RestoreProgress progress(String operationId) {
        long[] last = {0};
        return (phase, bytes, walBytes) -> {
            long now = System.nanoTime();
            if (now - last[0] > 250_000_000L || !phase.startsWith("copying") && !phase.startsWith("extracting")
                    && !phase.startsWith("streaming") && !phase.startsWith("staging")) {
                last[0] = now;
                catalog.operationProgress(operationId, phase, bytes, walBytes);
            }
        };
    }

    private void finish(String operationId, DatabaseRecord result, String resultId) {
        boolean ok = result.state() == DatabaseState.RUNNING;
        catalog.finishOperation(operationId, ok ? OperationState.SUCCEEDED : OperationState.FAILED, resultId,
                ok ? null : result.stateReason(), Instant.now());
        if (ok) {
            catalog.operationProgress(operationId, "done", catalog.findOperation(operationId).map(o -> o.bytes()).orElse(0L),
                    catalog.findOperation(operationId).map(o -> o.walBytes()).orElse(0L));
        }
    }

    /**
     * After a crash: a database still provisioning that a restore or fork was making is made again from the same
     * source and target; the interrupted operation is marked failed and a new one records the redo.
     */
    private Optional<DatabaseRecord> redoInterrupted(DatabaseRecord record) {
        Optional<OperationRecord> interrupted = catalog.runningOperationsFor(record.id()).stream()
                .filter(op -> op.kind() != OperationKind.BACKUP)
                .findFirst();
        if (interrupted.isEmpty()) {
            if (catalog.settings(record.id()).archiveId() != null) {
                // it ran and was archived: never re-make it empty from the template; keep what is there for an operator
                return Optional.of(databases.store().transition(record.id(), DatabaseState.FAILED,
                        "interrupted while provisioning after it had run; its instance and backups are kept: restore it"
                                + " (POST /v1/databases/" + record.id() + "/restore) or delete it"));
            }
            return Optional.empty();
        }
        OperationRecord op = interrupted.get();
        IsolationDriver driver = databases.driver(record);
        String sourceId = op.sourceId();
        if (op.kind() == OperationKind.RESTORE_IN_PLACE) {
            if (op.resultId() == null || databases.store().find(op.resultId()).isEmpty()) {
                // stopped before the pre-restore copy existed: the instance is intact, start it again
                catalog.finishOperation(op.id(), OperationState.FAILED, null, "interrupted by a restart of palisade",
                        Instant.now());
                backups.discardStaging(op.id());
                return Optional.of(databases.store().transition(record.id(), DatabaseState.RUNNING, null));
            }
            // finish the swap: the old instance and archive belong to the copy, then restore the id from them
            if (driver.listInstances().contains(record.id()) && !driver.listInstances().contains(op.resultId())) {
                driver.rename(record.id(), op.resultId());
            }
            if (catalog.settings(record.id()).archiveId() != null) {
                backups.handOverArchive(record.id(), op.resultId());
            }
            DatabaseRecord copy = databases.store().find(op.resultId()).orElseThrow();
            if (copy.state() == DatabaseState.STOPPED) {
                startCopy(copy, databases.credentials(copy).password());
            }
            sourceId = op.resultId();
        }
        driver.destroy(record.id());
        backups.discardStaging(op.id());
        catalog.finishOperation(op.id(), OperationState.FAILED, null, "interrupted by a restart of palisade; redone",
                Instant.now());
        RestoreTarget target = RestoreTarget.parse(op.target());
        String redoId = SecretBox.randomId("op");
        catalog.insertOperation(OperationRecord.started(redoId, op.kind(), op.accountId(), record.id(), op.sourceId(),
                op.target()));
        if (databases.store().find(sourceId).isEmpty() && !backups.hasKeptArchive(op.accountId(), sourceId)) {
            DatabaseRecord failed = databases.store().transition(record.id(), DatabaseState.FAILED,
                    "its source " + op.sourceId() + " was deleted while the restore was interrupted");
            finish(redoId, failed, null);
            return Optional.of(failed);
        }
        log.info("redoing interrupted {} of {} from {} ({})", op.kind().wireName(), record.id(), op.sourceId(),
                op.target());
        OperationKind kind = op.kind() == OperationKind.RESTORE_IN_PLACE ? OperationKind.RESTORE : op.kind();
        return Optional.of(run(redoId, record, kind, sourceId, target));
    }

    /** Removes staging directories no running operation uses (left by a crash). */
    public void cleanStaging() {
        java.util.Set<String> running = new java.util.HashSet<>();
        catalog.operationsInState(OperationState.RUNNING).forEach(op -> running.add(op.id()));
        backups.discardStagingExcept(running);
    }

    /** Marks operations a crash left running as failed (the databases they touched are reconciled on their own). */
    public void failInterrupted() {
        backups.failInterruptedBaseBackups();
        for (OperationRecord op : catalog.operationsInState(OperationState.RUNNING)) {
            boolean swapNotStarted = op.kind() == OperationKind.RESTORE_IN_PLACE && databases.store().find(op.databaseId())
                    .map(db -> db.state() != DatabaseState.PROVISIONING).orElse(true);
            if (op.kind() == OperationKind.BACKUP || swapNotStarted) {
                backups.discardStaging(op.id());
                catalog.finishOperation(op.id(), OperationState.FAILED, null, "interrupted by a restart of palisade",
                        Instant.now());
            }
        }
    }

    /** Records a restored or forked database as running (or failed), exactly as a create does. */
    private DatabaseRecord provisionFrom(DatabaseRecord record, java.util.function.Supplier<java.nio.file.Path> dataDirectory) {
        String id = record.id();
        IsolationDriver driver = databases.driver(record);
        long started = System.nanoTime();
        try {
            java.nio.file.Path dir = dataDirectory.get();
            RunningInstance instance = driver.provisionFrom(DatabaseService.spec(record), databases.credentials(record), dir,
                    phase -> log.info("restore {}: {}", id, phase));
            databases.store().setEndpoint(id, Optional.of(instance.endpoint()));
            DatabaseRecord running = databases.store().transition(id, DatabaseState.RUNNING, null);
            log.info("restored {} in {} ms at {}", id, (System.nanoTime() - started) / 1_000_000, instance.endpoint());
            databases.afterRunning(running);
            return running;
        } catch (RuntimeException e) {
            log.warn("restore of {} failed: {}", id, e.getMessage());
            return databases.store().transition(id, DatabaseState.FAILED, e.getMessage());
        }
    }

    /**
     * Records a copy of {@code source} under a new id and label with new credentials, stopped (its instance arrives by
     * rename). The copy has the same rung, plan and version.
     */
    private DatabaseService.Created insertCopy(DatabaseRecord source, String id, String label) {
        String password = SecretBox.randomSecret(32);
        String brokerToken = "pbt_" + SecretBox.randomSecret(40);
        Instant now = Instant.now();
        DatabaseRecord copy = new DatabaseRecord(id, source.accountId(), label, source.isolation(), source.version(),
                source.plan(), true, null, null, source.suspendAfterSeconds(), databases.hostId(), DatabaseState.STOPPED,
                "holds the state before an in-place restore of " + source.id(), source.username(), source.database(),
                databases.secrets().encrypt(password), SecretBox.hash(brokerToken), databases.secrets().encrypt(brokerToken), Optional.empty(),
                Optional.empty(), source.labels(), now, now, now);
        databases.store().insert(copy);
        return new DatabaseService.Created(copy, password, brokerToken);
    }

    /** Undoes the start of an in-place swap that failed before anything moved: the database is as it was. */
    private void rollBackSwap(DatabaseRecord original, DatabaseState state) {
        databases.store().find(original.id()).ifPresent(current -> {
            if (state == DatabaseState.RUNNING) {
                databases.afterRunning(databases.startRecorded(current, databases.driver(original)));
            } else {
                databases.store().transition(original.id(), DatabaseState.FAILED, "an in-place restore failed before anything moved;"
                        + " the database is unchanged: start it with POST /v1/databases/" + original.id() + "/restart");
            }
        });
    }

    /** Starts a stopped copy made by {@link #insertCopy} and gives it its own password. */
    private DatabaseRecord startCopy(DatabaseRecord copy, String password) {
        IsolationDriver driver = databases.driver(copy);
        DatabaseRecord started = databases.startRecorded(copy, driver);
        if (started.state() == DatabaseState.RUNNING) {
            driver.setPassword(copy.id(), copy.username(), password);
            databases.afterRunning(started);
        }
        return started;
    }
}
