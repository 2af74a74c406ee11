package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.backup.BackupService;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.Rung;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MetadataStore;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reconciliation for {@link DatabaseService}: brings this host's instances in line with the store (desired against
 * actual state), reaps expired ephemeral databases and keeps archiving in line with what runs. Thread-safe: each
 * database is re-read and acted on under its lock ({@link DatabaseService#withLock}); the only mutable state is the
 * volatile hook that redoes interrupted restores.
 */
final class DatabaseReconciler {
    private static final Logger log = LoggerFactory.getLogger(DatabaseService.class);

    private final DatabaseService service;
    private final DatabaseCreation creation;
    private final DatabaseChanges changes;
    private final MetadataStore store;
    private final Map<Rung, IsolationDriver> drivers;
    private final String hostId;
    private final ExecutorService workers;
    private volatile java.util.function.Function<DatabaseRecord, Optional<DatabaseRecord>> interruptedRestores =
            record -> Optional.empty();

    DatabaseReconciler(DatabaseService service, DatabaseCreation creation, DatabaseChanges changes) {
        this.service = requireNonNull(service, "service is null");
        this.creation = requireNonNull(creation, "creation is null");
        this.changes = requireNonNull(changes, "changes is null");
        this.store = service.store();
        this.drivers = service.drivers();
        this.hostId = service.hostId();
        this.workers = service.workers();
    }

    /** See {@link DatabaseService#setInterruptedRestores}. */
    void setInterruptedRestores(java.util.function.Function<DatabaseRecord, Optional<DatabaseRecord>> redo) {
        this.interruptedRestores = requireNonNull(redo, "redo is null");
    }

    /** See {@link DatabaseService#reconcile}. */
    List<String> reconcile(boolean startup) {
        List<String> actions = java.util.Collections.synchronizedList(new ArrayList<>());
        List<CompletableFuture<Void>> work = new ArrayList<>();
        List<DatabaseRecord> snapshots = store.listByHost(hostId);
        Map<String, Rung> known = new java.util.HashMap<>();
        for (DatabaseRecord snapshot : snapshots) {
            known.put(snapshot.id(), snapshot.isolation());
            if (!startup && (snapshot.state().isTransitional() || settled(snapshot))) {
                continue;
            }
            work.add(CompletableFuture.runAsync(() -> service.withLock(snapshot.id(), () -> {
                // re-read under the lock: the snapshot may be stale by now
                store.find(snapshot.id()).ifPresent(current -> {
                    if (startup || !current.state().isTransitional()) {
                        reconcileOne(current, actions, startup);
                    }
                });
                return null;
            }), workers));
        }
        CompletableFuture.allOf(work.toArray(CompletableFuture[]::new)).join();
        for (IsolationDriver driver : drivers.values()) {
            for (String id : driver.listInstances()) {
                Rung rung = known.get(id);
                if (rung == driver.rung()) {
                    continue;
                }
                if (rung != null) {
                    removeStray(driver, id, rung, actions);
                    continue;
                }
                service.withLock(id, () -> {
                    if (store.find(id).isEmpty()) {
                        driver.destroy(id);
                        actions.add("removed orphan " + driver.name() + " instance " + id);
                    }
                    return null;
                });
            }
        }
        actions.forEach(action -> log.info("reconcile: {}", action));
        return List.copyOf(actions);
    }

    /**
     * An instance of a known database on a rung its record does not name: what a move left when it could not finish its
     * clean-up. Removed unless a move of the database is under way or unsettled (the move owns it then).
     */
    private void removeStray(IsolationDriver driver, String id, Rung recorded, List<String> actions) {
        MoveService moveService = service.moves().orElse(null);
        if (moveService == null || moveService.moving(id) || moveService.unsettled(id)) {
            return;
        }
        service.withLock(id, () -> {
            driver.destroy(id);
            actions.add("removed stray " + driver.name() + " instance of " + id + " (it lives on " + recorded + ")");
            return null;
        });
    }

    /**
     * Whether a database's instance already is as its record says (a cheap check without the lock, so that a periodic
     * pass over a thousand databases costs next to nothing; what is not settled is re-checked under the lock).
     */
    private boolean settled(DatabaseRecord record) {
        IsolationDriver driver = drivers.get(record.isolation());
        if (driver == null) {
            return false;
        }
        return switch (record.state()) {
            case RUNNING -> driver.isRunning(record.id());
            case SUSPENDED, STOPPED, FAILED -> !driver.isRunning(record.id());
            default -> false;
        };
    }

    private void reconcileOne(DatabaseRecord record, List<String> actions, boolean startup) {
        String id = record.id();
        IsolationDriver driver = drivers.get(record.isolation());
        if (driver == null) {
            store.transition(id, DatabaseState.FAILED, "isolation driver '" + record.isolation() + "' is not available on this host");
            actions.add("marked " + id + " failed: driver " + record.isolation() + " missing");
            return;
        }
        switch (record.state()) {
            case DELETING -> {
                changes.destroyAndForget(id);
                actions.add("finished delete of " + id);
            }
            case PROVISIONING -> {
                DatabaseRecord result = interruptedRestores.apply(record).orElseGet(() -> {
                    driver.destroy(id);
                    return creation.provision(record);
                });
                actions.add("redid interrupted create of " + id + " → " + result.state().wireName());
            }
            case SUSPENDED -> {
                if (driver.isRunning(id)) {
                    store.setEndpoint(id, Optional.empty());
                    store.transition(id, DatabaseState.RUNNING, null);
                    actions.add("found suspended " + id + " running; recorded it as running");
                }
            }
            case RUNNING -> {
                if (!driver.isRunning(id)) {
                    // the instance died (a crash, a killed VM): connections pooled to it are dead, and a dead VM's
                    // never even close, so a client handed one would wait on it
                    service.invalidateConnections(id);
                    DatabaseRecord result = changes.startRecorded(record, driver);
                    actions.add("started " + id + " (was not running) → " + result.state().wireName());
                }
            }
            case STOPPED, FAILED -> {
                if (driver.isRunning(id)) {
                    driver.stop(id);
                    actions.add("stopped " + id + " (recorded as " + record.state().wireName() + ")");
                } else if (startup) {
                    // a server left running by a control plane that was killed is not this process's to see as
                    // running; stop is idempotent and ends such leftovers too
                    driver.stop(id);
                }
            }
        }
    }

    /** See {@link DatabaseService#reapExpired}. */
    List<String> reapExpired(Instant now) {
        List<String> reaped = new ArrayList<>();
        for (DatabaseRecord record : store.listByHost(hostId)) {
            if (record.persistent() || record.expiresAt() == null || record.expiresAt().isAfter(now)) {
                continue;
            }
            if (record.state() == DatabaseState.PROVISIONING || record.state() == DatabaseState.DELETING) {
                continue;
            }
            try {
                service.withLock(record.id(), () -> {
                    store.transition(record.id(), DatabaseState.DELETING, "ttl expired at " + record.expiresAt());
                    changes.destroyAndForget(record.id());
                    return null;
                });
                reaped.add(record.id());
                log.info("reaped ephemeral database {} (ttl expired at {})", record.id(), record.expiresAt());
            } catch (RuntimeException e) {
                log.warn("reaping {} failed, will retry: {}", record.id(), e.getMessage());
            }
        }
        return reaped;
    }

    /** See {@link DatabaseService#reconcileBackups}. */
    void reconcileBackups() {
        BackupService backupService = service.backups().orElse(null);
        if (backupService == null) {
            return;
        }
        for (DatabaseRecord record : store.listByHost(hostId)) {
            if (record.state() == DatabaseState.RUNNING) {
                service.withLock(record.id(), () -> {
                    store.find(record.id()).ifPresent(service::afterRunning);
                    return null;
                });
            } else if (!record.state().isTransitional()) {
                // under the lock, as read now: the snapshot may be seconds old and the database woken since
                service.withLock(record.id(), () -> {
                    store.find(record.id()).filter(r -> r.state() != DatabaseState.RUNNING
                            && !r.state().isTransitional()).ifPresent(r -> backupService.stopArchiving(r.id()));
                    return null;
                });
            }
        }
        try {
            backupService.prune(Instant.now());
        } catch (RuntimeException e) {
            log.warn("retention pruning failed: {}", e.getMessage());
        }
    }
}
