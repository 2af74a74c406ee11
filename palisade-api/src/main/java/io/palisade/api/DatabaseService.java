package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Backend;
import io.palisade.spi.BackendResolver;
import io.palisade.spi.BrokerTokenVerifier;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.Rung;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantAuthenticator;
import io.palisade.spi.TenantCredentials;
import io.palisade.backup.BackupService;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MetadataStore;
import io.palisade.store.SecretBox;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane's use cases: create, read, delete, rotate, restart, suspend and resume, and reconciliation of
 * desired (store) against actual (drivers) state; the {@link BackendResolver}, {@link TenantAuthenticator} and
 * {@link BrokerTokenVerifier} the proxy and the broker route and check connections with. Thread-safe: work on one
 * database id is serialised by a per-id lock ({@link #withLock}); blocking work runs on virtual threads.
 *
 * <p>This class holds the store, the per-id locks and the settings, and orchestrates; the work is done by one class
 * per job: {@link DatabaseCreation} (create and provision), {@link DatabaseChanges} (delete, rotate, restart),
 * {@link ScaleToZero} (suspend and resume), {@link ConnectionRouting} (resolve and wake, cutover holds, tenant logins),
 * {@link DatabaseReconciler} (reconcile, reap, archiving in line with what runs), {@link HostDrivers} (the drivers by
 * rung and the default rung). They get this class in their constructor and take every per-id lock through
 * {@link #withLock}.
 */
public final class DatabaseService implements BackendResolver, TenantAuthenticator, BrokerTokenVerifier, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DatabaseService.class);
    static final String TENANT_ROLE = "app";
    static final String TENANT_DATABASE = "app";

    /** A database plus the secrets that are shown to its owner. */
    public record Created(DatabaseRecord database, String password, String brokerToken) {
        @Override
        public String toString() {
            return "Created[" + database + "]";
        }
    }

    private final MetadataStore store;
    private final SecretBox secrets;
    private final Map<Rung, IsolationDriver> drivers;
    private final String hostId;
    private final ExecutorService workers = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("palisade-worker-", 0).factory());
    private final Map<String, ReentrantLock> locks = new ConcurrentHashMap<>();
    private final HostDrivers hostDrivers;

    private final boolean stopInstancesOnClose;
    private volatile java.util.function.Consumer<String> connectionsInvalidated = id -> {};
    private volatile java.util.function.Consumer<String> databaseDeleted = id -> {};
    private volatile BackupService backups;
    private volatile AccountQuotas quotas = AccountQuotas.DEFAULTS;
    private volatile MoveService moves;
    private final DatabaseChanges changes;
    private final DatabaseCreation creation;
    private final ScaleToZero scaleToZero;
    private final ConnectionRouting routing;
    private final DatabaseReconciler reconciler;

    public DatabaseService(
            MetadataStore store,
            SecretBox secrets,
            List<IsolationDriver> drivers,
            String hostId,
            Duration createWait,
            boolean stopInstancesOnClose,
            Optional<Duration> defaultSuspendAfter) {
        this.stopInstancesOnClose = stopInstancesOnClose;
        this.store = requireNonNull(store, "store is null");
        this.secrets = requireNonNull(secrets, "secrets is null");
        this.hostId = requireNonNull(hostId, "hostId is null");
        this.hostDrivers = new HostDrivers(drivers);
        this.drivers = hostDrivers.byRung();
        this.changes = new DatabaseChanges(this);
        this.creation = new DatabaseCreation(this, changes, createWait, defaultSuspendAfter);
        this.scaleToZero = new ScaleToZero(this);
        this.routing = new ConnectionRouting(this, scaleToZero);
        this.reconciler = new DatabaseReconciler(this, creation, changes);
    }

    public Rung defaultIsolation() {
        return hostDrivers.defaultIsolation();
    }

    public Map<Rung, DriverProbe> probes() {
        return hostDrivers.probes();
    }

    /** A rung's background work for {@code /v1/health} ({@link IsolationDriver#healthDetails()}); empty if none. */
    public Map<String, String> healthDetails(Rung rung) {
        return hostDrivers.healthDetails(rung);
    }

    public String hostId() {
        return hostId;
    }

    // settings

    /** Turns on per-database backups: archiving, base backups, restores (null: off). */
    public void setBackups(BackupService backups) {
        this.backups = backups;
    }

    Optional<BackupService> backups() {
        return Optional.ofNullable(backups);
    }

    /** The quotas every account's creates, restores, forks and moves are checked against. */
    public void setQuotas(AccountQuotas quotas) {
        this.quotas = requireNonNull(quotas, "quotas is null");
    }

    public AccountQuotas quotas() {
        return quotas;
    }

    /**
     * Checks the account's quotas for a database with {@code plan} and runs {@code then} before another check of the
     * same account can run, so two concurrent creates cannot both take the last slot.
     */
    <T> T withinQuota(String accountId, Plan plan, Optional<String> replacing, java.util.function.Supplier<T> then) {
        return withLock("quota:" + accountId, () -> {
            quotas.check(accountId, store.list(accountId), plan, replacing);
            return then.get();
        });
    }

    /** Turns on moves between rungs (null: off). */
    public void setMoves(MoveService moves) {
        this.moves = moves;
    }

    Optional<MoveService> moves() {
        return Optional.ofNullable(moves);
    }

    /** Refuses an operation that would change the instance under a move (credentials, restart, suspend). */
    void requireNoMove(String id, String what) {
        MoveService moveService = moves;
        if (moveService != null && moveService.moving(id)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is being moved to another rung; "
                    + what + " after the move ends, or cancel it (DELETE /v1/databases/" + id + "/move)");
        }
    }

    /** How a create interrupted by a restart is redone when it was a restore or fork (empty: it was not). */
    void setInterruptedRestores(java.util.function.Function<DatabaseRecord, Optional<DatabaseRecord>> redo) {
        reconciler.setInterruptedRestores(redo);
    }

    // create

    /** Validates, records and provisions; waits up to the create bound. The returned record says running or provisioning. */
    public Created create(String accountId, CreateDatabaseRequest request) {
        return creation.create(accountId, request);
    }

    /** As {@link #create(String, CreateDatabaseRequest)} with another way to make the instance (restore, fork). */
    Created create(String accountId, CreateDatabaseRequest request,
            java.util.function.Function<DatabaseRecord, DatabaseRecord> provisioner) {
        return creation.create(accountId, request, provisioner);
    }

    /** A database id never used before on this control plane (not by a database, a kept archive or an operation). */
    String newId() {
        return creation.newId();
    }

    /** As above with the id chosen by the caller (a restore records its operation under it before the database). */
    Created create(String accountId, CreateDatabaseRequest request, String id,
            java.util.function.Function<DatabaseRecord, DatabaseRecord> provisioner) {
        return creation.create(accountId, request, id, provisioner);
    }

    /** Records where a started instance listens and, on the shared rungs, the login its server knows the tenant by. */
    void recordInstance(String id, RunningInstance instance) {
        store.setEndpoint(id, instance.endpoint(), instance.serverLogin());
    }

    // read

    public DatabaseRecord get(String accountId, String id) {
        return store.find(accountId, id).orElseThrow(() -> notFound(id));
    }

    public List<DatabaseRecord> list(String accountId) {
        return store.list(accountId);
    }

    public TenantCredentials credentials(DatabaseRecord record) {
        return new TenantCredentials(record.username(), record.database(), secrets.decrypt(record.passwordEnc()));
    }

    public String brokerToken(DatabaseRecord record) {
        return secrets.decrypt(record.brokerTokenEnc());
    }

    public InstanceStats stats(String accountId, String id) {
        DatabaseRecord record = get(accountId, id);
        return driver(record).stats(id);
    }

    public List<String> logs(String accountId, String id, int lines) {
        DatabaseRecord record = get(accountId, id);
        return driver(record).logTail(id, lines);
    }

    // change

    public void delete(String accountId, String id) {
        delete(accountId, id, Optional.empty());
    }

    /**
     * Deletes the database with everything it has; its backups too, unless {@code keepBackups} says how long to keep
     * them.
     */
    public void delete(String accountId, String id, Optional<Duration> keepBackups) {
        changes.delete(accountId, id, keepBackups);
    }

    /** New password and broker token; the old ones stop working immediately. */
    public Created rotateCredentials(String accountId, String id) {
        return changes.rotateCredentials(accountId, id);
    }

    public DatabaseRecord restart(String accountId, String id) {
        return changes.restart(accountId, id);
    }

    /** See {@link DatabaseChanges#startRecorded}. */
    DatabaseRecord startRecorded(DatabaseRecord record, IsolationDriver driver) {
        return changes.startRecorded(record, driver);
    }

    // reconciliation

    /**
     * Brings this host in line with the store: starts what should run, removes what no database owns and, at startup
     * only, finishes interrupted deletes and redoes interrupted creates (later they belong to work in flight). Returns
     * what it did, one line per action.
     */
    public List<String> reconcile(boolean startup) {
        return reconciler.reconcile(startup);
    }

    /**
     * The reaper: deletes ephemeral databases whose time is up (exactly as DELETE does). Persistent databases are never
     * touched. Returns the ids it deleted.
     */
    public List<String> reapExpired(Instant now) {
        return reconciler.reapExpired(now);
    }

    // routing for the proxy and broker

    /**
     * Where a database listens; a suspended one is woken first (once, however many clients arrive at the same time),
     * so a client sees latency, never an error.
     */
    @Override
    public CompletableFuture<Optional<Backend>> resolve(String databaseId) {
        return routing.resolve(databaseId);
    }

    /** Holds new connections to {@code id} until the returned hold is released (a move's cutover, a suspend). */
    ConnectionRouting.Hold hold(String id) {
        return routing.hold(id);
    }

    /** Whether new connections to {@code id} wait for a hold's release right now (a suspend or a cutover runs). */
    public boolean connectionsHeld(String id) {
        return routing.held(id);
    }

    /** Pooled connections to {@code id} (the broker's) must go: the server behind them changes or ends them. */
    void invalidateConnections(String id) {
        routing.forget(id);
        connectionsInvalidated.accept(id);
    }

    /**
     * The login of a database that takes connections (running, or suspended and so woken by {@link #resolve}), from the
     * store only: nothing is woken or contacted.
     */
    @Override
    public CompletableFuture<Optional<TenantCredentials>> credentials(String databaseId) {
        return routing.credentials(databaseId);
    }

    /**
     * Called with a database id whenever pooled connections to it must go: after credential rotation, before suspend
     * and restart, before the reconciler restarts an instance that died, after delete, before an in-place restore's
     * swap and at a move's cutover (the broker evicts its pool, the proxy closes its parked backend connections).
     */
    public void setConnectionsInvalidated(java.util.function.Consumer<String> listener) {
        this.connectionsInvalidated = requireNonNull(listener, "listener is null");
    }

    /**
     * Called with a database id once it is deleted (after its connections were invalidated): what components keep per
     * database beyond its connections (the proxy's and the broker's per-database meters, cached secrets) goes then, so
     * that a platform that keeps creating and deleting tenants does not keep growing its metrics.
     */
    public void setDatabaseDeleted(java.util.function.Consumer<String> listener) {
        this.databaseDeleted = requireNonNull(listener, "listener is null");
    }

    /** See {@link #setDatabaseDeleted}. */
    void databaseDeleted(String id) {
        try {
            databaseDeleted.accept(id);
        } catch (RuntimeException e) {
            // the database is gone already: what a listener failed to drop must not turn the delete into an error
            log.warn("after deleting {}: {}", id, e.toString());
        }
    }

    /** How many times a suspended database was resumed (by a connection or the API) since start. */
    public long wakeCount() {
        return routing.wakeCount();
    }

    /** How the proxy and broker report open client connections per database (idle detection). */
    public void setOpenConnections(java.util.function.ToIntFunction<String> counter) {
        scaleToZero.setOpenConnections(counter);
    }

    public DatabaseRecord suspend(String accountId, String id) {
        return scaleToZero.suspend(accountId, id);
    }

    public DatabaseRecord resume(String accountId, String id) {
        return scaleToZero.resume(accountId, id);
    }

    /** Suspends running databases that have been idle longer than their {@code suspend_after_seconds}. */
    public List<String> suspendIdle(Instant now) {
        return scaleToZero.suspendIdle(now);
    }

    @Override
    public void touch(String databaseId) {
        routing.touch(databaseId);
    }

    /**
     * The database's login for a caller presenting its broker token or the API key of the account that owns it;
     * empty for anything else, an unknown id or another account's database. A token that verified within the last few
     * seconds passes from memory (forgotten when the database's lock is taken or its connections are invalidated, so a
     * rotation or a delete takes effect at once); any other token runs both lookups, so that an unknown id, a wrong
     * token and a foreign key take the same work.
     */
    @Override
    public Optional<TenantCredentials> verify(String databaseId, String token) {
        return routing.verify(databaseId, token);
    }

    // backups

    /** Starts archiving a database that now runs (persistent databases on rungs that can restore). */
    void afterRunning(DatabaseRecord record) {
        BackupService backupService = backups;
        IsolationDriver driver = drivers.get(record.isolation());
        if (backupService == null || !record.persistent() || driver == null || !driver.supportsRestore()
                || record.state() != DatabaseState.RUNNING) {
            return;
        }
        try {
            backupService.ensureArchiving(record.id(), record.accountId(), record.plan().diskMb());
        } catch (RuntimeException e) {
            log.warn("cannot start archiving {}: {}", record.id(), e.getMessage());
        }
    }

    void stopArchiving(String id) {
        BackupService backupService = backups;
        if (backupService != null) {
            backupService.stopArchiving(id);
        }
    }

    /** The management access of a running database, for the backup service. */
    public io.palisade.spi.AdminAccess adminAccess(String id) {
        DatabaseRecord record = store.find(id).orElseThrow(() -> notFound(id));
        if (record.state() != DatabaseState.RUNNING) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is " + record.state().wireName());
        }
        return driver(record).adminAccess(id);
    }

    /** Where a running database's tenant lives on its server, with superuser access (moves, operators' checks). */
    public io.palisade.spi.TenantPlace tenantPlace(String id) {
        DatabaseRecord record = store.find(id).orElseThrow(() -> notFound(id));
        if (record.state() != DatabaseState.RUNNING) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is " + record.state().wireName());
        }
        return driver(record).tenantPlace(id);
    }

    /** Archiving for what runs, none for what does not; then retention. Called by the reconcile loop. */
    public void reconcileBackups() {
        reconciler.reconcileBackups();
    }

    MetadataStore store() {
        return store;
    }

    SecretBox secrets() {
        return secrets;
    }

    Map<Rung, IsolationDriver> drivers() {
        return drivers;
    }

    ExecutorService workers() {
        return workers;
    }

    /** See {@link HostDrivers#driverFor}. */
    IsolationDriver driver(DatabaseRecord record) {
        return hostDrivers.driverFor(record);
    }

    /** See {@link HostDrivers#driver(Rung)}. */
    IsolationDriver driver(Rung rung) {
        return hostDrivers.driver(rung);
    }

    // helpers

    static InstanceSpec spec(DatabaseRecord record) {
        return new InstanceSpec(record.id(), record.version(), record.plan(), record.username(), record.database());
    }

    static PalisadeException notFound(String id) {
        return PalisadeException.notFound("database '" + id + "' not found");
    }

    /** Whether some thread holds the database's lock ({@link #withLock}), i.e. its state may be changing. */
    boolean isLocked(String id) {
        ReentrantLock lock = locks.get(id);
        return lock != null && lock.isLocked();
    }

    /**
     * Runs {@code action} holding the lock of {@code id} (a database id, or {@code quota:<account>}); reentrant. Every
     * change to a database and its instance runs under its lock, in this class and in the classes it delegates to;
     * taking it makes connection routing forget what it remembers of the database.
     */
    <T> T withLock(String id, java.util.function.Supplier<T> action) {
        ReentrantLock lock = locks.computeIfAbsent(id, ignored -> new ReentrantLock());
        lock.lock();
        routing.forget(id); // what routing remembers of the database may change from here
        try {
            return action.get();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Stops every instance this host runs if so configured (their recorded state stays, so the next start brings them
     * back), then releases the drivers.
     */
    @Override
    public void close() {
        workers.shutdown();
        try {
            workers.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        hostDrivers.close(stopInstancesOnClose);
    }
}
