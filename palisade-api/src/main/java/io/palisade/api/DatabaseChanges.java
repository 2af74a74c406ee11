package io.palisade.api;

import static io.palisade.api.DatabaseService.notFound;
import static io.palisade.api.DatabaseService.spec;
import static java.util.Objects.requireNonNull;

import io.palisade.api.DatabaseService.Created;
import io.palisade.backup.BackupService;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Rung;
import io.palisade.spi.RunningInstance;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MetadataStore;
import io.palisade.store.SecretBox;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Changes to an existing database for {@link DatabaseService}: delete (with or without keeping its backups), credential
 * rotation, restart, and the two steps other paths share: ending a database everywhere ({@link #destroyAndForget}) and
 * starting its recorded instance ({@link #startRecorded}). Thread-safe: no mutable state of its own; every change runs
 * under the database's lock ({@link DatabaseService#withLock}), and the package-private steps expect their caller to
 * hold it.
 */
final class DatabaseChanges {
    private static final Logger log = LoggerFactory.getLogger(DatabaseService.class);

    private final DatabaseService service;
    private final MetadataStore store;
    private final SecretBox secrets;
    private final Map<Rung, IsolationDriver> drivers;

    DatabaseChanges(DatabaseService service) {
        this.service = requireNonNull(service, "service is null");
        this.store = service.store();
        this.secrets = service.secrets();
        this.drivers = service.drivers();
    }

    /** See {@link DatabaseService#delete(String, String, Optional)}. */
    void delete(String accountId, String id, Optional<Duration> keepBackups) {
        service.get(accountId, id);
        MoveService moveService = service.moves().orElse(null);
        if (moveService != null) {
            moveService.stopForDelete(id);
        }
        service.withLock(id, () -> {
            BackupService backupService = service.backups().orElse(null);
            if (backupService != null && keepBackups.isPresent()) {
                // recorded before the delete starts: a crash during it must not lose what the caller asked to keep
                backupService.keepArchives(id, keepBackups.get());
            }
            store.transition(id, DatabaseState.DELETING, null);
            destroyAndForget(id, keepBackups);
            return null;
        });
    }

    /** Ends a database on every rung, with its archives, and forgets it; the caller holds its lock. */
    void destroyAndForget(String id) {
        destroyAndForget(id, Optional.empty());
    }

    private void destroyAndForget(String id, Optional<Duration> keepBackups) {
        BackupService backupService = service.backups().orElse(null);
        if (backupService != null) {
            backupService.deleteArchives(id, keepBackups);
        }
        DatabaseRecord record = store.find(id).orElse(null);
        if (record != null) {
            service.driver(record).destroy(id);
        }
        for (IsolationDriver driver : drivers.values()) {
            if (driver.listInstances().contains(id)) {
                driver.destroy(id);
            }
        }
        store.delete(id);
        service.invalidateConnections(id);
        service.databaseDeleted(id);
        log.info("deleted {}", id);
    }

    /** See {@link DatabaseService#rotateCredentials}. */
    Created rotateCredentials(String accountId, String id) {
        service.get(accountId, id);
        return service.withLock(id, () -> {
            service.requireNoMove(id, "rotate its credentials");
            DatabaseRecord record = store.find(id).orElseThrow(() -> notFound(id));
            if (record.state() != DatabaseState.RUNNING) {
                throw new PalisadeException(ErrorCode.CONFLICT,
                        "database " + id + " is " + record.state().wireName() + "; credentials can be rotated only while it is running");
            }
            String password = SecretBox.randomSecret(32);
            String token = "pbt_" + SecretBox.randomSecret(40);
            service.driver(record).setPassword(id, record.username(), password);
            store.setSecrets(id, secrets.encrypt(password), SecretBox.hash(token), secrets.encrypt(token));
            service.invalidateConnections(id);
            return new Created(store.find(id).orElseThrow(), password, token);
        });
    }

    /** See {@link DatabaseService#restart}. */
    DatabaseRecord restart(String accountId, String id) {
        service.get(accountId, id);
        return service.withLock(id, () -> {
            service.requireNoMove(id, "restart it");
            DatabaseRecord record = store.find(id).orElseThrow(() -> notFound(id));
            if (record.state() == DatabaseState.PROVISIONING || record.state() == DatabaseState.DELETING) {
                throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is " + record.state().wireName()
                        + "; wait until it settles before restarting it");
            }
            IsolationDriver driver = service.driver(record);
            service.stopArchiving(id);
            service.invalidateConnections(id);
            driver.stop(id);
            DatabaseRecord started = startRecorded(record, driver);
            service.afterRunning(started);
            return started;
        });
    }

    /** Starts a database's recorded instance and records it running, or failed; the caller holds its lock. */
    DatabaseRecord startRecorded(DatabaseRecord record, IsolationDriver driver) {
        String id = record.id();
        try {
            RunningInstance instance = driver.start(spec(record), phase -> log.info("start {}: {}", id, phase));
            service.recordInstance(id, instance);
            return record.state() == DatabaseState.RUNNING ? store.find(id).orElseThrow()
                    : store.transition(id, DatabaseState.RUNNING, null);
        } catch (RuntimeException e) {
            log.warn("start of {} failed: {}", id, e.getMessage());
            store.setEndpoint(id, Optional.empty());
            return store.transition(id, DatabaseState.FAILED, e.getMessage());
        }
    }
}
