package io.palisade.backup;

import static java.util.Objects.requireNonNull;

import io.palisade.backup.store.ArchiveStore;
import io.palisade.backup.store.DataKey;
import io.palisade.backup.store.Sealer;
import io.palisade.pgwire.Lsn;
import io.palisade.pgwire.PgConnection;
import io.palisade.pgwire.PgTarget;
import io.palisade.spi.AdminAccess;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.store.ArchiveRecord;
import io.palisade.store.BackupCatalog;
import io.palisade.store.BackupSettings;
import io.palisade.store.BaseBackupRecord;
import io.palisade.store.BaseBackupState;
import io.palisade.store.Durability;
import io.palisade.store.SecretBox;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Per-database backups: one archive (WAL lineage) per database, continuous WAL archiving, base backups at start, on a
 * schedule and on demand, the restorable window, restores and forks into prepared data directories, retention and
 * deletion. Thread-safe; the caller serialises calls for one database (the control plane's per-id lock).
 */
public final class BackupService implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(BackupService.class);
    /** The replication slot of an archive: one per lineage, so a new lineage never trips over an invalidated one. */
    static String slotName(String archiveId) {
        return "pa_" + archiveId.replace('-', '_');
    }

    /** The restorable window of a database's current archive; empty ends while nothing is restorable yet. */
    public record Window(Optional<Instant> earliest, Optional<Instant> latest) {}

    /** Archiving health of one database, for GET, health and metrics. */
    public record ArchiveStatus(
            String databaseId, String archiveId, boolean streaming, long archivedLsn, long lagBytes, double lagSeconds,
            Optional<Instant> lastBaseBackupAt, long failures, Optional<String> lastError) {
        /** Broken: not streaming, or behind for more than a minute. */
        public boolean healthy() {
            return streaming && lastError.isEmpty() && !(lagSeconds > 60);
        }
    }

    private final BackupConfig config;
    private final BackupCatalog catalog;
    private final ArchiveStore store;
    private final SecretBox master;
    private final Sealer sealer;
    private final Function<String, AdminAccess> access;
    private final BaseBackupTaker taker;
    private final RestorePlanner planner;
    private final Retention retention;
    private final Map<String, WalArchiver> archivers = new ConcurrentHashMap<>();
    /**
     * A base backup running for a database: cancelled when its archiving stops (delete waits until it is done).
     * {@code pending}: a background backup still waiting out its start delay, which an on-demand one may replace.
     */
    private record InFlight(BaseBackupCancel cancel, java.util.concurrent.CountDownLatch done,
            java.util.concurrent.atomic.AtomicBoolean pending) {
        static InFlight start() {
            return new InFlight(new BaseBackupCancel(), new java.util.concurrent.CountDownLatch(1),
                    new java.util.concurrent.atomic.AtomicBoolean());
        }

        void finish() {
            done.countDown();
        }
    }

    /** How long a base backup waits for its archiver to hold the slot. */
    private static final Duration SLOT_WAIT = Duration.ofSeconds(60);

    private final Map<String, InFlight> backupsInFlight = new ConcurrentHashMap<>();
    private final Map<String, Instant> backoffUntil = new ConcurrentHashMap<>();
    private final Map<String, Integer> backupFailures = new ConcurrentHashMap<>();
    private final java.util.Set<String> expected = ConcurrentHashMap.newKeySet();
    private final Map<String, Object> archiverLocks = new ConcurrentHashMap<>();
    private final Map<String, Object> durabilityLocks = new ConcurrentHashMap<>();
    /** Databases whose last durability write failed: written again at the next {@link #ensureArchiving}. */
    private final java.util.Set<String> durabilityPending = ConcurrentHashMap.newKeySet();
    private final Semaphore baseBackupSlots = new Semaphore(1);
    private final ExecutorService threads =
            Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("palisade-backup-", 0).factory());

    /**
     * @param access how to reach a running database's server as its management superuser (throws when it does not run)
     */
    public BackupService(BackupConfig config, BackupCatalog catalog, ArchiveStore store, SecretBox master,
            Function<String, AdminAccess> access) {
        this.config = requireNonNull(config, "config is null");
        this.catalog = requireNonNull(catalog, "catalog is null");
        this.store = requireNonNull(store, "store is null");
        this.master = requireNonNull(master, "master is null");
        this.access = requireNonNull(access, "access is null");
        this.sealer = new Sealer();
        this.taker = new BaseBackupTaker(store, sealer);
        this.planner = new RestorePlanner(config, catalog, master, new ArchiveRestorer(store, sealer),
                this::syncArchiver, this::liveCaughtUp);
        this.retention = new Retention(config, catalog, store);
    }

    public BackupConfig config() {
        return config;
    }

    /** Where archives go, for tenants: the kind only, no host paths or endpoints. */
    public String storeKind() {
        return store.describe().startsWith("s3") ? "s3" : "local";
    }

    /** Base backups interrupted by a crash: failed, and their partial objects removed. Called at start. */
    public void failInterruptedBaseBackups() {
        for (BaseBackupRecord backup : catalog.baseBackupsInState(BaseBackupState.RUNNING)) {
            catalog.failBaseBackup(backup.id(), "interrupted by a restart of palisade", Instant.now());
            store.deletePrefix(ArchiveLayout.basePrefix(backup.archiveId(), backup.id()));
        }
    }

    // archiving

    /**
     * Makes sure a running database is archived: its archive exists, its archiver streams, its durability setting is
     * applied, and it has a base backup (taken in the background when missing or older than its interval). Idempotent.
     */
    public void ensureArchiving(String databaseId, String accountId, int diskMb) {
        if (!config.enabled()) {
            return;
        }
        synchronized (lockFor(databaseId)) {
            ensureArchivingLocked(databaseId, accountId, diskMb);
        }
    }

    private Object lockFor(String databaseId) {
        return archiverLocks.computeIfAbsent(databaseId, id -> new Object());
    }

    private void ensureArchivingLocked(String databaseId, String accountId, int diskMb) {
        expected.add(databaseId);
        BackupSettings settings = catalog.settings(databaseId);
        ArchiveRecord archive = settings.archiveId() == null
                ? newArchive(databaseId, accountId)
                : catalog.findArchive(settings.archiveId()).orElseGet(() -> newArchive(databaseId, accountId));
        WalArchiver running = archivers.get(databaseId);
        Duration backupDelay = Duration.ZERO; // a due base backup waits the start delay only when an archiver starts
        if (running != null && running.archiveId().equals(archive.id()) && running.stalled()) {
            // the lineage cannot continue (slot lost, another cluster): a new archive starts here, with a base backup
            // (restores read the current archive; the old one is kept until its last moment leaves the window)
            log.warn("archive {} of {} cannot continue ({}); starting a new archive", archive.id(), databaseId,
                    running.lastError().orElse("stalled"));
            running.close();
            archivers.remove(databaseId);
            archive = newArchive(databaseId, accountId);
            running = null;
        }
        if (running == null || !running.archiveId().equals(archive.id())) {
            if (running != null) {
                running.close();
            }
            // a durability changed while nothing ran (or a failed write) may leave the server waiting for a sync
            // archiver: then it connects, and the setting is written, at once
            boolean stale = durabilityPending.remove(databaseId);
            // a new lineage has no slot yet: until its archiver creates one nothing keeps the server's WAL (a fork
            // or a base backup could find it recycled), so only an established one's archiver waits; the durability
            // write and a due base backup wait either way (the slot keeps the WAL meanwhile; a new database's first
            // client then does not share the guest with them)
            Duration delay = stale ? Duration.ZERO : delayOf(archive);
            backupDelay = config.startDelay();
            WalArchiver archiver = new WalArchiver(databaseId, archive.id(), archive.slotName(), archive.archivedLsn(),
                    DataKey.unwrap(archive.dataKeyEnc(), master), archive.systemId(), () -> access.apply(databaseId),
                    store, sealer, catalog, config.flushInterval(), settings.durability(),
                    delay);
            archivers.put(databaseId, archiver);
            threads.execute(archiver);
            if (stale) {
                writeDurability(databaseId, diskMb, archiver);
            } else {
                applyDurability(databaseId, settings.durability(), diskMb, archiver, config.startDelay());
            }
        } else if (durabilityPending.remove(databaseId)) {
            applyDurability(databaseId, settings.durability(), diskMb, running, Duration.ZERO); // failed: again
        }
        if (backoffUntil.getOrDefault(databaseId, Instant.EPOCH).isAfter(Instant.now())) {
            return;
        }
        Duration interval = settings.baseBackupIntervalSeconds() == null ? config.baseBackupInterval()
                : Duration.ofSeconds(settings.baseBackupIntervalSeconds());
        Optional<BaseBackupRecord> last = lastComplete(archive.id());
        if (last.isEmpty() || last.get().finishedAt().plus(interval).isBefore(Instant.now())) {
            backupInBackground(databaseId, last.isEmpty() ? "initial" : "scheduled", backupDelay);
        }
    }

    private ArchiveRecord newArchive(String databaseId, String accountId) {
        String archiveId = io.palisade.store.SecretBox.randomId("ar");
        ArchiveRecord archive = ArchiveRecord.create(archiveId, databaseId, accountId, DataKey.generate().wrap(master),
                slotName(archiveId));
        catalog.insertArchive(archive);
        catalog.setArchive(databaseId, archive.id());
        // a new lineage gets a new slot: the old one (if any) would otherwise keep WAL for nobody
        ArchiveRecord fresh = catalog.findArchive(archive.id()).orElseThrow();
        log.info("archive {} started for {} in {}", fresh.id(), databaseId, store.describe());
        return archive;
    }

    /**
     * Stops streaming (before the instance stops, suspends or is deleted); what was received is flushed first. A base
     * backup of it in flight is cancelled (its connection aborted: a suspended server would never answer it, and it
     * holds the host's base backup slot); the next start takes a new one.
     */
    public void stopArchiving(String databaseId) {
        expected.remove(databaseId);
        InFlight backup = backupsInFlight.get(databaseId);
        if (backup != null) {
            backup.cancel().cancel("archiving of its database stopped (it stopped, suspended, restarted, moved or was"
                    + " restored; its next start takes a new one)");
            backupsInFlight.remove(databaseId, backup); // the next start need not wait for it to wind down
        }
        WalArchiver archiver;
        synchronized (lockFor(databaseId)) {
            archiver = archivers.remove(databaseId);
        }
        if (archiver != null) {
            archiver.close();
        }
    }

    /** Sets how commits relate to the archive; sync makes every commit wait for the archive's flush. */
    public void setDurability(String databaseId, Durability durability, Integer retentionSeconds, Integer intervalSeconds) {
        // under the archiver's lock: an archiver being started meanwhile either sees these settings or is seen here
        synchronized (lockFor(databaseId)) {
            catalog.setSettings(databaseId, durability, retentionSeconds, intervalSeconds);
            WalArchiver archiver = archivers.get(databaseId);
            if (archiver != null) {
                archiver.setDurability(durability);
                writeDurability(databaseId, 0, archiver);
            } else {
                durabilityPending.add(databaseId); // the server's setting is written when it next starts
            }
        }
    }

    /**
     * Writes the database's durability into its server's configuration for {@code archiver}: {@code sync} at once,
     * before the database is served, so that from its first commit on a commit waits for the archive; {@code async} in
     * the background, off the create and wake path (a fresh server connection costs a TCG guest most of a second): no
     * commit waits for the archive then, and the archiver's slot keeps the WAL of the meantime. A failed write is
     * retried at the next {@link #ensureArchiving}.
     */
    private void applyDurability(String databaseId, Durability durability, int diskMb, WalArchiver archiver,
            Duration delay) {
        if (durability == Durability.SYNC) {
            writeDurability(databaseId, diskMb, archiver);
            return;
        }
        threads.execute(() -> {
            try {
                sleepQuietly(delay); // after the first client: see BackupConfig#startDelay
                if (!Thread.currentThread().isInterrupted()) {
                    writeDurability(databaseId, diskMb, archiver);
                }
            } catch (RuntimeException e) {
                log.info("durability of {} not applied (it went meanwhile?): {}", databaseId, e.getMessage());
            }
        });
    }

    /**
     * Writes the durability the catalog holds now, unless {@code archiver} is no longer the database's (it stopped,
     * moved or was restored meanwhile: whoever started the next one writes it). Serialised per database and read under
     * that lock, so that of a deferred write and a change of settings the last one written is the current one.
     */
    private void writeDurability(String databaseId, int diskMb, WalArchiver archiver) {
        synchronized (durabilityLocks.computeIfAbsent(databaseId, id -> new Object())) {
            if (archivers.get(databaseId) != archiver) {
                return;
            }
            if (alterSystem(databaseId, catalog.settings(databaseId).durability(), diskMb)) {
                durabilityPending.remove(databaseId);
            } else {
                durabilityPending.add(databaseId);
            }
        }
    }

    /** Sets the durability (and the slot's WAL bound) with ALTER SYSTEM and reloads; true when the server took it. */
    private boolean alterSystem(String databaseId, Durability durability, int diskMb) {
        AdminAccess admin;
        try {
            admin = access.apply(databaseId);
        } catch (RuntimeException e) {
            return false; // written at the next start
        }
        try (PgConnection sql = PgConnection.open(PgTarget.of(admin), admin.user(), admin.password(),
                Map.of("application_name", "palisade_backup", "database", "postgres"), Duration.ofSeconds(10))) {
            String names = durability == Durability.SYNC ? "'\"" + WalArchiver.APPLICATION_NAME + "\"'" : "''";
            sql.execute("ALTER SYSTEM SET synchronous_standby_names = " + names);
            // a slot nobody drains must not fill the tenant's disk: past this, PostgreSQL gives the WAL up (and we see it)
            if (diskMb > 0) {
                sql.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '" + Math.max(64, Math.min(1024, diskMb / 4))
                        + "MB'");
            }
            sql.execute("ALTER SYSTEM RESET hot_standby");
            sql.execute("ALTER SYSTEM RESET restore_command");
            sql.execute("ALTER SYSTEM RESET recovery_target_action");
            sql.execute("ALTER SYSTEM RESET recovery_target_time");
            sql.execute("ALTER SYSTEM RESET recovery_target_lsn");
            sql.execute("ALTER SYSTEM RESET recovery_target_inclusive");
            sql.simpleQuery("SELECT pg_reload_conf()");
            return true;
        } catch (RuntimeException e) {
            log.warn("cannot apply durability {} to {}: {}", durability.wireName(), databaseId, e.getMessage());
            return false;
        }
    }

    // base backups

    /**
     * How long a new archiver waits before it connects (see {@link BackupConfig#startDelay()}): nothing for a lineage
     * whose archive holds no WAL yet (a new database: no slot keeps its WAL until the archiver creates one).
     */
    private Duration delayOf(ArchiveRecord archive) {
        return archive.archivedLsn() != null && archive.archivedLsn() != 0 ? config.startDelay() : Duration.ZERO;
    }

    private void backupInBackground(String databaseId, String trigger, Duration delay) {
        InFlight flight = InFlight.start();
        flight.pending().set(true);
        if (backupsInFlight.putIfAbsent(databaseId, flight) != null) {
            return;
        }
        threads.execute(() -> {
            try {
                sleepQuietly(delay); // after the first client: see BackupConfig#startDelay
                if (!flight.pending().compareAndSet(true, false) || flight.cancel().cancelled()
                        || !expected.contains(databaseId) || Thread.currentThread().isInterrupted()) {
                    return; // deleted, stopped or suspended meanwhile, or palisade stops: the next start takes it
                }
                takeBaseBackup(databaseId, trigger, RestoreProgress.NONE, flight);
                backupFailures.remove(databaseId);
                backoffUntil.remove(databaseId);
            } catch (RuntimeException e) {
                if (flight.cancel().cancelled()) {
                    log.info("{} base backup of {} stopped: {}", trigger, databaseId, e.getMessage());
                    return; // not a failure of the database's backups: its next start takes one
                }
                // back off: 1, 2, 4 … 60 minutes, so a database whose backups keep failing does not hog the host
                int failures = backupFailures.merge(databaseId, 1, Integer::sum);
                backoffUntil.put(databaseId, Instant.now().plus(Duration.ofMinutes(Math.min(60, 1L << Math.min(6,
                        failures - 1)))));
                log.warn("{} base backup of {} failed ({} in a row): {}", trigger, databaseId, failures, e.getMessage());
            } finally {
                backupsInFlight.remove(databaseId, flight);
                flight.finish();
            }
        });
    }

    /** Whether a base backup of the database is being taken (or waits for its turn) now. */
    public boolean baseBackupRunning(String databaseId) {
        InFlight flight = backupsInFlight.get(databaseId);
        return flight != null && !flight.cancel().cancelled();
    }

    /** An on-demand base backup; refused while one of the same database is already running. */
    public BaseBackupRecord backupNow(String databaseId, String trigger, RestoreProgress progress) {
        InFlight flight = InFlight.start();
        InFlight waiting = backupsInFlight.get(databaseId);
        if (waiting != null && waiting.pending().compareAndSet(true, false)) {
            // a background backup still in its start delay: this one takes its place
            waiting.cancel().cancel("an on-demand base backup took its place");
            backupsInFlight.remove(databaseId, waiting);
        }
        if (backupsInFlight.putIfAbsent(databaseId, flight) != null) {
            throw new PalisadeException(ErrorCode.CONFLICT, "a base backup of " + databaseId
                    + " is already running; wait for it (GET /v1/databases/" + databaseId + "/operations)");
        }
        try {
            return takeBaseBackup(databaseId, trigger, progress, flight);
        } finally {
            backupsInFlight.remove(databaseId, flight);
            flight.finish();
        }
    }

    /**
     * Takes a base backup now (one at a time per host, rate-limited), and waits until the archive also holds the WAL
     * that makes it consistent. Returns the completed record.
     */
    private BaseBackupRecord takeBaseBackup(String databaseId, String trigger, RestoreProgress progress,
            InFlight flight) {
        BackupSettings settings = catalog.settings(databaseId);
        if (settings.archiveId() == null) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + databaseId + " is not archived yet; start it first");
        }
        ArchiveRecord archive = catalog.findArchive(settings.archiveId()).orElseThrow();
        progress.update("waiting for the archiver to hold its slot", 0, 0);
        awaitArchiverSlot(databaseId, archive.id(), flight.cancel());
        AdminAccess admin = access.apply(databaseId);
        BaseBackupRecord record = BaseBackupRecord.started(io.palisade.store.SecretBox.randomId("bb"), archive.id(), trigger);
        progress.update("waiting for the host's base backup slot", 0, 0);
        acquireBaseBackupSlot(databaseId, flight.cancel());
        boolean recorded = false;
        try {
            flight.cancel().throwIfCancelled("of " + databaseId); // while it waited: no record, no connection
            catalog.insertBaseBackup(record);
            recorded = true;
            progress.update("streaming base backup", 0, 0);
            BaseBackupTaker.Taken taken = taker.take(admin, archive.id(), record.id(),
                    DataKey.unwrap(archive.dataKeyEnc(), master), config.maxRateKbps(),
                    bytes -> progress.update("streaming base backup", bytes, 0), flight.cancel());
            progress.update("waiting for the archive to hold the WAL up to " + taken.result().end(), taken.bytes(), 0);
            awaitArchived(databaseId, archive.id(), taken.result().end().value(), Duration.ofSeconds(60));
            catalog.completeBaseBackup(record.id(), taken.result().start().value(), taken.result().end().value(),
                    taken.result().startTimeline(), taken.bytes(), taken.meta().parts().size(), Instant.now());
            log.info("{} base backup {} of {}: {} bytes, {} .. {}", trigger, record.id(), databaseId, taken.bytes(),
                    taken.result().start(), taken.result().end());
            return catalog.baseBackups(archive.id()).stream().filter(b -> b.id().equals(record.id())).findFirst()
                    .orElseThrow();
        } catch (RuntimeException e) {
            if (recorded) {
                catalog.failBaseBackup(record.id(), e.getMessage(), Instant.now());
                store.deletePrefix(ArchiveLayout.basePrefix(archive.id(), record.id()));
            }
            throw e instanceof PalisadeException pe ? pe
                    : new PalisadeException(ErrorCode.DRIVER_FAILURE, "base backup of " + databaseId + " failed: "
                            + e.getMessage(), e);
        } finally {
            baseBackupSlots.release();
        }
    }

    /**
     * Waits until the database's archiver holds its slot (connecting it now if it waits out its start delay): a base
     * backup must begin at WAL the archive will get, or it cannot be restored.
     */
    private void awaitArchiverSlot(String databaseId, String archiveId, BaseBackupCancel cancel) {
        WalArchiver archiver = archivers.get(databaseId);
        if (archiver == null || !archiver.archiveId().equals(archiveId)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + databaseId + " is not being archived now"
                    + " (it is not running); start it first");
        }
        archiver.connectNow();
        long deadline = System.nanoTime() + SLOT_WAIT.toNanos();
        try {
            while (!archiver.awaitSlot(Duration.ofMillis(200))) {
                cancel.throwIfCancelled("of " + databaseId);
                if (archiver.ended() || System.nanoTime() > deadline) {
                    throw new PalisadeException(ErrorCode.TIMEOUT, "the archiver of " + databaseId + " did not reach"
                            + " its server" + (archiver.ended() ? " before it stopped" : " within "
                            + SLOT_WAIT.toSeconds() + " s") + archiver.lastError().map(e -> " (" + e + ")").orElse(""));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.TIMEOUT, "interrupted while waiting for the archiver of " + databaseId);
        }
    }

    /** The host's base backup slot, taken unless the backup is cancelled while it waits (polled, not interrupted). */
    private void acquireBaseBackupSlot(String databaseId, BaseBackupCancel cancel) {
        try {
            while (!baseBackupSlots.tryAcquire(200, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                cancel.throwIfCancelled("of " + databaseId);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.TIMEOUT, "interrupted while waiting for the host's base backup slot");
        }
    }

    /** Waits until the archiver of {@code archiveId} has archived everything before {@code lsn}. */
    private void awaitArchived(String databaseId, String archiveId, long lsn, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            WalArchiver current = archivers.get(databaseId);
            // only the archive the backup belongs to counts: a replacement lineage's progress does not restore it
            WalArchiver archiver = current != null && current.archiveId().equals(archiveId) ? current : null;
            if (archiver != null && Long.compareUnsigned(archiver.archivedLsn(), lsn) >= 0) {
                archiver.syncCatalog();
                return;
            }
            if (archiver == null || archiver.stalled() || System.nanoTime() > deadline) {
                String why = archiver == null ? "its archive is not being streamed"
                        : archiver.lastError().map(e -> "the archiver reports: " + e).orElse("the archive is behind");
                throw new PalisadeException(ErrorCode.TIMEOUT, "WAL of " + databaseId + " up to " + new Lsn(lsn)
                        + " did not reach the archive within " + timeout.toSeconds() + " s; " + why);
            }
            sleepQuietly(Duration.ofMillis(20));
        }
    }

    // reading

    public List<BaseBackupRecord> backups(String databaseId) {
        String archiveId = catalog.settings(databaseId).archiveId();
        return archiveId == null ? List.of() : catalog.baseBackups(archiveId);
    }

    public Window window(String databaseId) {
        String archiveId = catalog.settings(databaseId).archiveId();
        if (archiveId == null) {
            return new Window(Optional.empty(), Optional.empty());
        }
        return planner.window(catalog.findArchive(archiveId).orElseThrow());
    }

    // restore and fork: see RestorePlanner

    /**
     * Checks that {@code target} lies inside the source's restorable window and builds a data directory for it under
     * the staging directory. The source keeps running.
     */
    public Path prepareRestore(String sourceDatabaseId, RestoreTarget target, boolean stopAtTarget, String operationId,
            RestoreProgress progress) {
        return planner.prepareRestore(sourceDatabaseId, target, stopAtTarget, operationId, progress);
    }

    /** Fails with a user-facing error unless {@code target} lies inside the database's restorable window. */
    public void validateTarget(String databaseId, RestoreTarget target) {
        planner.validateTarget(databaseId, target);
    }

    /** Whether a deleted database of this account has a kept archive to restore from. */
    public boolean hasKeptArchive(String accountId, String databaseId) {
        return catalog.keptArchive(accountId, databaseId).isPresent();
    }

    /** For a deleted database's kept archive of this account: whether its data ran inside a vm guest; empty: none. */
    public Optional<Boolean> keptArchiveFromVm(String accountId, String databaseId) {
        return catalog.keptArchive(accountId, databaseId).map(archive -> catalog.archiveDataFromVm(archive.id()));
    }

    /** A data directory holding the running source's state now (forks of the current state). */
    public Path prepareFork(String sourceDatabaseId, String operationId, RestoreProgress progress) {
        return planner.prepareFork(access.apply(sourceDatabaseId), operationId, progress);
    }

    /** Removes every staging directory but those of the given operations. */
    public void discardStagingExcept(java.util.Set<String> operationIds) {
        planner.discardStagingExcept(operationIds);
    }

    /** Removes a staging directory left by a restore that did not finish. */
    public void discardStaging(String operationId) {
        planner.discardStaging(operationId);
    }

    public Optional<ArchiveStatus> status(String databaseId) {
        String archiveId = catalog.settings(databaseId).archiveId();
        if (archiveId == null) {
            return Optional.empty();
        }
        ArchiveRecord archive = catalog.findArchive(archiveId).orElseThrow();
        WalArchiver archiver = archivers.get(databaseId);
        Optional<Instant> lastBackup = lastComplete(archiveId).map(BaseBackupRecord::finishedAt);
        if (archiver == null) {
            return Optional.of(new ArchiveStatus(databaseId, archiveId, false,
                    archive.archivedLsn() == null ? 0 : archive.archivedLsn(), 0, Double.NaN, lastBackup,
                    archive.failures(), Optional.ofNullable(archive.lastError())));
        }
        Optional<String> error = archiver.lastError();
        if (error.isEmpty() && lastBackup.isEmpty() && archive.createdAt().isBefore(Instant.now().minusSeconds(600))) {
            error = Optional.of("no base backup has completed since the archive started at " + archive.createdAt());
        }
        return Optional.of(new ArchiveStatus(databaseId, archiveId, !archiver.stalled(), archiver.archivedLsn(),
                archiver.lagBytes(), archiver.lagSeconds(), lastBackup, archiver.failures(), error));
    }

    /** Status of every database that should be archived now (running, persistent, on a rung with backups). */
    public List<ArchiveStatus> statuses() {
        java.util.Set<String> ids = new java.util.TreeSet<>(expected);
        ids.addAll(archivers.keySet());
        return ids.stream().map(id -> {
            try {
                return status(id).orElseGet(() -> new ArchiveStatus(id, "", false, 0, 0, Double.NaN, Optional.empty(), 0,
                        Optional.of("not archived yet")));
            } catch (RuntimeException e) {
                return null; // deleted meanwhile
            }
        }).filter(java.util.Objects::nonNull).toList();
    }

    private Optional<BaseBackupRecord> lastComplete(String archiveId) {
        return catalog.baseBackups(archiveId).stream().filter(b -> b.state() == BaseBackupState.COMPLETE)
                .max(Comparator.comparing(BaseBackupRecord::finishedAt));
    }

    // ownership, deletion and retention: see Retention

    /** Applies retention to every archive; returns what it deleted. */
    public List<String> prune(Instant now) {
        return retention.prune(now);
    }

    /**
     * The database now lives in another cluster (a move between rungs): archiving stops, and the next
     * {@link #ensureArchiving} starts a new archive with a new base backup. The old archive stays the database's until
     * retention removes it; restores read the current archive, so the restorable window starts again here.
     */
    public void startOver(String databaseId) {
        stopArchiving(databaseId);
        catalog.setArchive(databaseId, null);
    }

    /** In-place restore: the database that keeps the pre-restore state takes over the current archive. */
    public void handOverArchive(String fromDatabaseId, String toDatabaseId) {
        stopArchiving(fromDatabaseId);
        String archiveId = catalog.settings(fromDatabaseId).archiveId();
        if (archiveId != null) {
            catalog.assignArchive(archiveId, toDatabaseId);
            catalog.setArchive(toDatabaseId, archiveId);
        }
        catalog.setArchive(fromDatabaseId, null);
    }

    /**
     * The database is being deleted: stop archiving and delete every archive it owns, or keep them for {@code keep}
     * (then the pruner deletes them).
     */
    /** Marks every archive of the database as kept for {@code keep} (its delete follows). */
    public void keepArchives(String databaseId, Duration keep) {
        Instant until = Instant.now().plus(keep);
        for (ArchiveRecord archive : catalog.archivesOf(databaseId)) {
            if (archive.keepUntil() == null) {
                catalog.orphanArchive(archive.id(), until);
                log.info("keeping archive {} of {} until {}", archive.id(), databaseId, until);
            }
        }
    }

    public void deleteArchives(String databaseId, Optional<Duration> keep) {
        InFlight flight = backupsInFlight.get(databaseId);
        if (flight != null) {
            flight.cancel().cancel("its database is being deleted");
        }
        stopArchiving(databaseId);
        if (flight != null) {
            try {
                if (!flight.done().await(60, java.util.concurrent.TimeUnit.SECONDS)) {
                    log.warn("a base backup of {} did not stop within 60 s of its delete", databaseId);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (ArchiveRecord archive : catalog.archivesOf(databaseId)) {
            if (archive.keepUntil() != null) {
                continue; // kept from an earlier life of this id
            }
            if (keep.isPresent()) {
                catalog.orphanArchive(archive.id(), Instant.now().plus(keep.get()));
                log.info("kept archive {} of deleted {} until {}", archive.id(), databaseId, Instant.now().plus(keep.get()));
            } else {
                retention.deleteArchive(archive);
            }
        }
        // the per-database bookkeeping goes with it (ids are not reused while a database lives)
        backoffUntil.remove(databaseId);
        backupFailures.remove(databaseId);
        durabilityPending.remove(databaseId);
        archiverLocks.remove(databaseId);
        durabilityLocks.remove(databaseId);
    }

    /** Writes a running archiver's progress to the catalog now (before a restore reads it). */
    private void syncArchiver(String databaseId) {
        WalArchiver archiver = archivers.get(databaseId);
        if (archiver != null) {
            archiver.syncCatalog();
        }
    }

    /** The live caught-up moment of an archive that is being streamed now. */
    private Optional<Instant> liveCaughtUp(ArchiveRecord archive) {
        return Optional.ofNullable(archivers.get(archive.databaseId()))
                .filter(a -> a.archiveId().equals(archive.id()))
                .flatMap(WalArchiver::caughtUpAt);
    }

    @Override
    public void close() {
        archivers.keySet().forEach(this::stopArchiving);
        threads.shutdownNow();
    }

    static void deleteQuietly(Path dir) {
        if (Files.exists(dir)) {
            io.palisade.host.Processes.run(List.of("rm", "-rf", dir.toString()), Duration.ofMinutes(5), null);
        }
    }

    private static void sleepQuietly(Duration duration) {
        try {
            Thread.sleep(duration);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted", e);
        }
    }
}
