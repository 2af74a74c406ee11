package io.palisade.api;

import static io.palisade.api.DatabaseService.notFound;
import static io.palisade.api.DatabaseService.spec;
import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Rung;
import io.palisade.spi.RunningInstance;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MetadataStore;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Scale to zero for {@link DatabaseService}: suspending a running database (asked for, or idle longer than its
 * {@code suspend_after_seconds} with no open client connection) and resuming a suspended one. Thread-safe: every
 * suspend and resume runs under the database's lock ({@link DatabaseService#withLock}); the package-private steps
 * expect their caller to hold it. The only mutable state is the volatile open-connections counter.
 */
final class ScaleToZero {
    private static final Logger log = LoggerFactory.getLogger(DatabaseService.class);

    private final DatabaseService service;
    private final MetadataStore store;
    private final Map<Rung, IsolationDriver> drivers;
    private final String hostId;
    private volatile java.util.function.ToIntFunction<String> openConnections = id -> 0;

    ScaleToZero(DatabaseService service) {
        this.service = requireNonNull(service, "service is null");
        this.store = service.store();
        this.drivers = service.drivers();
        this.hostId = service.hostId();
    }

    /** Resumes a suspended database and records it running, or failed; the caller holds its lock. */
    DatabaseRecord resumeRecorded(DatabaseRecord record, IsolationDriver driver) {
        String id = record.id();
        try {
            RunningInstance instance = driver.resume(spec(record), phase -> log.info("resume {}: {}", id, phase));
            service.recordInstance(id, instance);
            store.touch(id, Instant.now());
            DatabaseRecord running = store.transition(id, DatabaseState.RUNNING, null);
            service.afterRunning(running);
            return running;
        } catch (RuntimeException e) {
            log.warn("resume of {} failed: {}", id, e.getMessage());
            return store.transition(id, DatabaseState.FAILED, "resume failed: " + e.getMessage());
        }
    }

    /** See {@link DatabaseService#setOpenConnections}. */
    void setOpenConnections(java.util.function.ToIntFunction<String> counter) {
        this.openConnections = requireNonNull(counter, "counter is null");
    }

    /** See {@link DatabaseService#suspend}. */
    DatabaseRecord suspend(String accountId, String id) {
        service.get(accountId, id);
        return service.withLock(id, () -> {
            service.requireNoMove(id, "suspend it");
            DatabaseRecord record = store.find(id).orElseThrow(() -> notFound(id));
            IsolationDriver driver = service.driver(record);
            if (!driver.supportsSuspend()) {
                throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " runs on the " + driver.name()
                        + " rung, which cannot suspend (" + driver.rung().suspend()
                        + "); only vm databases can");
            }
            if (record.state() == DatabaseState.SUSPENDED) {
                return record;
            }
            record.state().checkTransition(DatabaseState.SUSPENDED, id);
            if (record.state() != DatabaseState.RUNNING) {
                throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is " + record.state().wireName()
                        + "; only a running database can be suspended");
            }
            int open = openConnections.applyAsInt(id);
            if (open > 0) {
                throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " has " + open
                        + " open client connection(s); close them before suspending");
            }
            return suspendRecorded(record, driver);
        });
    }

    private DatabaseRecord suspendRecorded(DatabaseRecord record, IsolationDriver driver) {
        long started = System.nanoTime();
        // new connections wait while the instance is saved: one let through now would be frozen into the saved state
        // and its client would hang until some later wake; once released they find it suspended and wake it
        ConnectionRouting.Hold hold = service.hold(record.id());
        try {
            service.invalidateConnections(record.id());
            service.stopArchiving(record.id());
            driver.suspend(DatabaseService.spec(record));
            store.setEndpoint(record.id(), Optional.empty());
            DatabaseRecord suspended = store.transition(record.id(), DatabaseState.SUSPENDED, null);
            log.info("suspended {} in {} ms", record.id(), (System.nanoTime() - started) / 1_000_000);
            return suspended;
        } finally {
            hold.release();
        }
    }

    /** See {@link DatabaseService#resume}. */
    DatabaseRecord resume(String accountId, String id) {
        service.get(accountId, id);
        service.resolve(id).join();
        return service.get(accountId, id);
    }

    /**
     * See {@link DatabaseService#suspendIdle}. A database whose base backup is running is not idle: suspending it
     * would cancel the backup, and one that keeps going idle sooner than its backup takes would never get one.
     */
    List<String> suspendIdle(Instant now) {
        List<String> suspended = new ArrayList<>();
        for (DatabaseRecord snapshot : store.listByHost(hostId)) {
            if (snapshot.state() != DatabaseState.RUNNING || snapshot.suspendAfterSeconds() == null) {
                continue;
            }
            IsolationDriver driver = drivers.get(snapshot.isolation());
            if (driver == null || !driver.supportsSuspend()) {
                continue;
            }
            if (snapshot.lastActiveAt().plusSeconds(snapshot.suspendAfterSeconds()).isAfter(now)
                    || service.moves().filter(moveService -> moveService.moving(snapshot.id())).isPresent()) {
                continue;
            }
            service.withLock(snapshot.id(), () -> {
                DatabaseRecord current = store.find(snapshot.id()).orElse(null);
                if (current != null && current.state() == DatabaseState.RUNNING
                        && !current.lastActiveAt().plusSeconds(current.suspendAfterSeconds()).isAfter(now)
                        && openConnections.applyAsInt(current.id()) == 0
                        && !service.backups().map(b -> b.baseBackupRunning(current.id())).orElse(false)) {
                    try {
                        suspendRecorded(current, driver);
                        suspended.add(current.id());
                    } catch (RuntimeException e) {
                        log.warn("idle suspend of {} failed: {}", current.id(), e.getMessage());
                    }
                }
                return null;
            });
        }
        return suspended;
    }
}
