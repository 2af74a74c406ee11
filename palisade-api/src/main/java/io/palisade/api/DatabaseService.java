package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Backend;
import io.palisade.spi.BackendResolver;
import io.palisade.spi.BrokerTokenVerifier;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.Rung;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.ServerLogin;
import io.palisade.spi.TenantAuthenticator;
import io.palisade.spi.TenantCredentials;
import io.palisade.backup.BackupService;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MetadataStore;
import io.palisade.store.SecretBox;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane's use cases: create, read, delete, rotate, restart, and reconciliation of desired (store) against
 * actual (drivers) state. Thread-safe: work on one database id is serialised by a per-id lock; blocking work runs on
 * virtual threads.
 */
public final class DatabaseService implements BackendResolver, TenantAuthenticator, BrokerTokenVerifier, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DatabaseService.class);
    private static final Pattern LABEL = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
    private static final Pattern LABEL_KEY = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/-]{0,62}");
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
    private final Duration createWait;
    private final ExecutorService workers = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("palisade-worker-", 0).factory());
    private final Map<String, ReentrantLock> locks = new ConcurrentHashMap<>();
    private final Map<Rung, DriverProbe> probes = new LinkedHashMap<>();
    private final Rung defaultIsolation;

    private final boolean stopInstancesOnClose;
    private final Optional<Duration> defaultSuspendAfter;
    private final Map<String, CompletableFuture<Optional<Backend>>> wakes = new ConcurrentHashMap<>();
    private final java.util.concurrent.atomic.AtomicLong wakeCount = new java.util.concurrent.atomic.AtomicLong();
    private volatile java.util.function.ToIntFunction<String> openConnections = id -> 0;
    private volatile java.util.function.Consumer<String> connectionsInvalidated = id -> {};
    private volatile BackupService backups;
    private volatile AccountQuotas quotas = AccountQuotas.DEFAULTS;
    private volatile MoveService moves;
    private final Map<String, CompletableFuture<Void>> holds = new ConcurrentHashMap<>();
    private volatile java.util.function.Function<DatabaseRecord, Optional<DatabaseRecord>> interruptedRestores =
            record -> Optional.empty();

    public DatabaseService(
            MetadataStore store,
            SecretBox secrets,
            List<IsolationDriver> drivers,
            String hostId,
            Duration createWait,
            boolean stopInstancesOnClose,
            Optional<Duration> defaultSuspendAfter) {
        this.stopInstancesOnClose = stopInstancesOnClose;
        this.defaultSuspendAfter = requireNonNull(defaultSuspendAfter, "defaultSuspendAfter is null");
        this.store = requireNonNull(store, "store is null");
        this.secrets = requireNonNull(secrets, "secrets is null");
        this.hostId = requireNonNull(hostId, "hostId is null");
        this.createWait = requireNonNull(createWait, "createWait is null");
        Map<Rung, IsolationDriver> byName = new LinkedHashMap<>();
        for (IsolationDriver driver : drivers) {
            byName.put(driver.rung(), driver);
            probes.put(driver.rung(), driver.probe());
        }
        this.drivers = Map.copyOf(byName);
        this.defaultIsolation = chooseDefault(probes);
    }

    /**
     * The default rung: the first usable driver that wants to be the default (vm with KVM), else {@code process}. When
     * none is usable, the message lists every candidate and why it was rejected.
     */
    static Rung chooseDefault(Map<Rung, DriverProbe> probes) {
        for (var probe : probes.entrySet()) {
            if (probe.getValue().usable() && probe.getValue().preferredDefault()) {
                return probe.getKey();
            }
        }
        DriverProbe process = probes.get(Rung.PROCESS);
        if (process != null && process.usable()) {
            return Rung.PROCESS;
        }
        for (var probe : probes.entrySet()) {
            if (probe.getValue().usable()) {
                return probe.getKey();
            }
        }
        List<String> reasons = probes.values().stream().map(p -> p.driver() + ": " + p.reason()).toList();
        throw new PalisadeException(ErrorCode.INTERNAL, "no isolation driver is usable on this host: " + reasons);
    }

    public Rung defaultIsolation() {
        return defaultIsolation;
    }

    public Map<Rung, DriverProbe> probes() {
        return Map.copyOf(probes);
    }

    /** A rung's background work for {@code /v1/health} ({@link IsolationDriver#healthDetails()}); empty if none. */
    public Map<String, String> healthDetails(Rung rung) {
        IsolationDriver driver = drivers.get(rung);
        return driver == null ? Map.of() : driver.healthDetails();
    }

    public String hostId() {
        return hostId;
    }

    // create

    /** Turns on per-database backups: archiving, base backups, restores (null: off). */
    public void setBackups(BackupService backups) {
        this.backups = backups;
    }

    Optional<BackupService> backups() {
        return Optional.ofNullable(backups);
    }

    /** Turns on moves between rungs (null: off). */
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

    public void setMoves(MoveService moves) {
        this.moves = moves;
    }

    Optional<MoveService> moves() {
        return Optional.ofNullable(moves);
    }

    /** Refuses an operation that would change the instance under a move (credentials, restart, suspend). */
    private void requireNoMove(String id, String what) {
        MoveService moveService = moves;
        if (moveService != null && moveService.moving(id)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is being moved to another rung; "
                    + what + " after the move ends, or cancel it (DELETE /v1/databases/" + id + "/move)");
        }
    }

    /** How a create interrupted by a restart is redone when it was a restore or fork (empty: it was not). */
    void setInterruptedRestores(java.util.function.Function<DatabaseRecord, Optional<DatabaseRecord>> redo) {
        this.interruptedRestores = requireNonNull(redo, "redo is null");
    }

    /** Validates, records and provisions; waits up to the create bound. The returned record says running or provisioning. */
    public Created create(String accountId, CreateDatabaseRequest request) {
        return create(accountId, request, this::provision);
    }

    /** As {@link #create(String, CreateDatabaseRequest)} with another way to make the instance (restore, fork). */
    Created create(String accountId, CreateDatabaseRequest request,
            java.util.function.Function<DatabaseRecord, DatabaseRecord> provisioner) {
        return create(accountId, request, newId(), provisioner);
    }

    /** A database id never used before on this control plane (not by a database, a kept archive or an operation). */
    String newId() {
        for (int attempt = 0; attempt < 100; attempt++) {
            String id = SecretBox.randomId("db");
            if (!store.idInUse(id)) {
                return id;
            }
        }
        throw new PalisadeException(ErrorCode.INTERNAL, "cannot find an unused database id");
    }

    /** As above with the id chosen by the caller (a restore records its operation under it before the database). */
    Created create(String accountId, CreateDatabaseRequest request, String id,
            java.util.function.Function<DatabaseRecord, DatabaseRecord> provisioner) {
        Rung isolation = request.isolation() == null ? defaultIsolation : Rung.fromWire(request.isolation());
        IsolationDriver driver = drivers.get(isolation);
        if (driver == null) {
            throw PalisadeException.invalid("isolation '" + isolation + "' is not run by this host; available here: "
                    + drivers.keySet().stream().map(Rung::wireName).sorted().toList());
        }
        DriverProbe probe = probes.get(isolation);
        if (!probe.usable()) {
            throw new PalisadeException(
                    ErrorCode.CAPACITY_EXHAUSTED, "isolation '" + isolation + "' is not usable on this host: " + probe.reason());
        }
        Plan plan = request.plan() == null ? Plan.NANO : Plan.byName(request.plan());
        plan = plan.withCpuAndMemory(request.cpu(), request.memoryMb());
        PostgresVersion version = request.version() == null
                ? PostgresVersion.DEFAULT
                : PostgresVersion.fromMajor(request.version());
        boolean persistent = request.persistent() == null ? request.ttlSeconds() == null : request.persistent();
        if (request.ttlSeconds() != null) {
            if (persistent) {
                throw PalisadeException.invalid(
                        "ttl_seconds applies only to ephemeral databases; drop it or set \"persistent\": false");
            }
            if (request.ttlSeconds() < 1 || request.ttlSeconds() > 31_536_000) {
                throw PalisadeException.invalid("ttl_seconds must be between 1 and 31536000, got " + request.ttlSeconds());
            }
        }
        Map<String, String> labels = validateLabels(request.labels(), request.region());
        Integer suspendAfter = suspendAfter(request.suspendAfterSeconds(), driver);
        String label = request.label() == null ? id : validateLabel(request.label());
        String password = SecretBox.randomSecret(32);
        String brokerToken = "pbt_" + SecretBox.randomSecret(40);
        Instant now = Instant.now();
        DatabaseRecord record = new DatabaseRecord(
                id, accountId, label, isolation, version, plan, persistent, request.ttlSeconds(),
                request.ttlSeconds() == null ? null : now.plusSeconds(request.ttlSeconds()),
                suspendAfter,
                hostId, DatabaseState.PROVISIONING, null, TENANT_ROLE, TENANT_DATABASE,
                secrets.encrypt(password), SecretBox.hash(brokerToken), secrets.encrypt(brokerToken),
                Optional.empty(), Optional.empty(), labels, now, now, now);
        io.palisade.store.Durability durability = request.durability() == null ? io.palisade.store.Durability.ASYNC
                : io.palisade.store.Durability.fromWire(request.durability());
        withinQuota(accountId, plan, Optional.empty(), () -> {
            store.insert(record);
            return null;
        });
        if (durability != io.palisade.store.Durability.ASYNC) {
            store.backupCatalog().setSettings(id, durability, null, null);
        }
        if (isolation == Rung.VM) {
            store.backupCatalog().markDataFromVm(id);
        }
        log.info("creating {} (label {}, isolation {}, plan {}, account {})", id, label, isolation, plan.name(), accountId);
        CompletableFuture<DatabaseRecord> provisioning =
                CompletableFuture.supplyAsync(() -> withLock(id, () -> provisioner.apply(store.find(id).orElseThrow())), workers);
        try {
            DatabaseRecord done = provisioning.get(createWait.toMillis(), TimeUnit.MILLISECONDS);
            if (done.state() == DatabaseState.FAILED) {
                // the driver already removed what it made; leave nothing behind in the store either
                withLock(id, () -> {
                    store.transition(id, DatabaseState.DELETING, done.stateReason());
                    destroyAndForget(id);
                    return null;
                });
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                        "database could not be started and was removed: " + done.stateReason());
            }
            return new Created(done, password, brokerToken);
        } catch (TimeoutException e) {
            return new Created(store.find(id).orElseThrow(), password, brokerToken);
        } catch (ExecutionException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "create of " + id + " failed: " + e.getCause().getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while creating " + id, e);
        }
    }

    private DatabaseRecord provision(DatabaseRecord record) {
        String id = record.id();
        IsolationDriver driver = driverFor(record);
        long started = System.nanoTime();
        try {
            RunningInstance instance = driver.provision(spec(record), credentials(record),
                    phase -> log.info("create {}: {}", id, phase));
            recordInstance(id, instance);
            DatabaseRecord running = store.transition(id, DatabaseState.RUNNING, null);
            log.info("created {} in {} ms at {}", id, (System.nanoTime() - started) / 1_000_000, instance.endpoint());
            afterRunning(running);
            return running;
        } catch (RuntimeException e) {
            log.warn("create of {} failed: {}", id, e.getMessage());
            return store.transition(id, DatabaseState.FAILED, e.getMessage());
        }
    }

    /** Records where a started instance listens and, on the shared rungs, the login its server knows the tenant by. */
    private void recordInstance(String id, RunningInstance instance) {
        store.setEndpoint(id, instance.endpoint(), instance.serverLogin());
    }

    /** {@code null} = never; a number of seconds ≥ 10; absent = the rung's default. */
    private Integer suspendAfter(Object requested, IsolationDriver driver) {
        if (requested == null) {
            return driver.supportsSuspend() ? defaultSuspendAfter.map(d -> (int) d.toSeconds()).orElse(null) : null;
        }
        if (requested instanceof String text && text.equals("never")) {
            return null;
        }
        if (requested instanceof Integer seconds) {
            if (!driver.supportsSuspend()) {
                throw PalisadeException.invalid("the " + driver.name() + " rung cannot suspend idle databases; "
                        + "drop suspend_after_seconds or use \"isolation\": \"vm\"");
            }
            if (seconds < 10 || seconds > 31_536_000) {
                throw PalisadeException.invalid("suspend_after_seconds must be between 10 and 31536000, or \"never\"; got "
                        + seconds);
            }
            return seconds;
        }
        throw PalisadeException.invalid("field 'suspend_after_seconds' must be an integer or \"never\"");
    }

    private static String validateLabel(String label) {
        if (label.isEmpty()) {
            throw PalisadeException.invalid("label must not be empty");
        }
        if (label.length() > 63) {
            throw PalisadeException.invalid("label is " + label.length() + " characters long; the limit is 63");
        }
        if (!LABEL.matcher(label).matches()) {
            throw PalisadeException.invalid("label '" + label
                    + "' may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit");
        }
        return label;
    }

    private static Map<String, String> validateLabels(Map<String, String> labels, String region) {
        Map<String, String> out = new LinkedHashMap<>();
        if (labels != null) {
            if (labels.size() > 32) {
                throw PalisadeException.invalid("at most 32 labels are allowed, got " + labels.size());
            }
            labels.forEach((key, value) -> {
                if (key == null || !LABEL_KEY.matcher(key).matches()) {
                    throw PalisadeException.invalid("label key '" + key + "' is invalid (letters, digits, . _ / -, max 63)");
                }
                if (value == null || value.length() > 256) {
                    throw PalisadeException.invalid("label '" + key + "' must have a string value of at most 256 characters");
                }
                out.put(key, value);
            });
        }
        if (region != null) {
            if (!LABEL.matcher(region).matches()) {
                throw PalisadeException.invalid("region '" + region + "' is invalid");
            }
            out.put("region", region);
        }
        return out;
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
        return driverFor(record).stats(id);
    }

    public List<String> logs(String accountId, String id, int lines) {
        DatabaseRecord record = get(accountId, id);
        return driverFor(record).logTail(id, lines);
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
        get(accountId, id);
        MoveService moveService = moves;
        if (moveService != null) {
            moveService.stopForDelete(id);
        }
        withLock(id, () -> {
            BackupService backupService = backups;
            if (backupService != null && keepBackups.isPresent()) {
                // recorded before the delete starts: a crash during it must not lose what the caller asked to keep
                backupService.keepArchives(id, keepBackups.get());
            }
            store.transition(id, DatabaseState.DELETING, null);
            destroyAndForget(id, keepBackups);
            return null;
        });
    }

    private void destroyAndForget(String id) {
        destroyAndForget(id, Optional.empty());
    }

    private void destroyAndForget(String id, Optional<Duration> keepBackups) {
        BackupService backupService = backups;
        if (backupService != null) {
            backupService.deleteArchives(id, keepBackups);
        }
        DatabaseRecord record = store.find(id).orElse(null);
        if (record != null) {
            driverFor(record).destroy(id);
        }
        for (IsolationDriver driver : drivers.values()) {
            if (driver.listInstances().contains(id)) {
                driver.destroy(id);
            }
        }
        store.delete(id);
        connectionsInvalidated.accept(id);
        log.info("deleted {}", id);
    }

    /** New password and broker token; the old ones stop working immediately. */
    public Created rotateCredentials(String accountId, String id) {
        get(accountId, id);
        return withLock(id, () -> {
            requireNoMove(id, "rotate its credentials");
            DatabaseRecord record = store.find(id).orElseThrow(() -> notFound(id));
            if (record.state() != DatabaseState.RUNNING) {
                throw new PalisadeException(ErrorCode.CONFLICT,
                        "database " + id + " is " + record.state().wireName() + "; credentials can be rotated only while it is running");
            }
            String password = SecretBox.randomSecret(32);
            String token = "pbt_" + SecretBox.randomSecret(40);
            driverFor(record).setPassword(id, record.username(), password);
            store.setSecrets(id, secrets.encrypt(password), SecretBox.hash(token), secrets.encrypt(token));
            connectionsInvalidated.accept(id);
            return new Created(store.find(id).orElseThrow(), password, token);
        });
    }

    public DatabaseRecord restart(String accountId, String id) {
        get(accountId, id);
        return withLock(id, () -> {
            requireNoMove(id, "restart it");
            DatabaseRecord record = store.find(id).orElseThrow(() -> notFound(id));
            if (record.state() == DatabaseState.PROVISIONING || record.state() == DatabaseState.DELETING) {
                throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is " + record.state().wireName()
                        + "; wait until it settles before restarting it");
            }
            IsolationDriver driver = driverFor(record);
            stopArchiving(id);
            connectionsInvalidated.accept(id);
            driver.stop(id);
            DatabaseRecord started = startRecorded(record, driver);
            afterRunning(started);
            return started;
        });
    }

    DatabaseRecord startRecorded(DatabaseRecord record, IsolationDriver driver) {
        String id = record.id();
        try {
            RunningInstance instance = driver.start(spec(record), phase -> log.info("start {}: {}", id, phase));
            recordInstance(id, instance);
            return record.state() == DatabaseState.RUNNING ? store.find(id).orElseThrow()
                    : store.transition(id, DatabaseState.RUNNING, null);
        } catch (RuntimeException e) {
            log.warn("start of {} failed: {}", id, e.getMessage());
            store.setEndpoint(id, Optional.empty());
            return store.transition(id, DatabaseState.FAILED, e.getMessage());
        }
    }

    // reconciliation

    /**
     * Brings this host in line with the store: starts what should run, removes what no database owns and, at startup
     * only, finishes interrupted deletes and redoes interrupted creates (later they belong to work in flight). Returns
     * what it did, one line per action.
     */
    public List<String> reconcile(boolean startup) {
        List<String> actions = java.util.Collections.synchronizedList(new ArrayList<>());
        List<CompletableFuture<Void>> work = new ArrayList<>();
        List<DatabaseRecord> snapshots = store.listByHost(hostId);
        Map<String, Rung> known = new java.util.HashMap<>();
        for (DatabaseRecord snapshot : snapshots) {
            known.put(snapshot.id(), snapshot.isolation());
            if (!startup && (snapshot.state().isTransitional() || settled(snapshot))) {
                continue;
            }
            work.add(CompletableFuture.runAsync(() -> withLock(snapshot.id(), () -> {
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
                withLock(id, () -> {
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
        MoveService moveService = moves;
        if (moveService == null || moveService.moving(id) || moveService.unsettled(id)) {
            return;
        }
        withLock(id, () -> {
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
                destroyAndForget(id);
                actions.add("finished delete of " + id);
            }
            case PROVISIONING -> {
                DatabaseRecord result = interruptedRestores.apply(record).orElseGet(() -> {
                    driver.destroy(id);
                    return provision(record);
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
                    DatabaseRecord result = startRecorded(record, driver);
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

    /**
     * The reaper: deletes ephemeral databases whose time is up (exactly as DELETE does). Persistent databases are never
     * touched. Returns the ids it deleted.
     */
    public List<String> reapExpired(Instant now) {
        List<String> reaped = new ArrayList<>();
        for (DatabaseRecord record : store.listByHost(hostId)) {
            if (record.persistent() || record.expiresAt() == null || record.expiresAt().isAfter(now)) {
                continue;
            }
            if (record.state() == DatabaseState.PROVISIONING || record.state() == DatabaseState.DELETING) {
                continue;
            }
            try {
                withLock(record.id(), () -> {
                    store.transition(record.id(), DatabaseState.DELETING, "ttl expired at " + record.expiresAt());
                    destroyAndForget(record.id());
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

    // routing for the proxy and broker

    /**
     * Where a database listens; a suspended one is woken first (once, however many clients arrive at the same time),
     * so a client sees latency, never an error.
     */
    @Override
    public CompletableFuture<Optional<Backend>> resolve(String databaseId) {
        CompletableFuture<Void> hold = holds.get(databaseId);
        if (hold != null) {
            // a move's cutover: the connection waits for the switch (bounded), then goes where the record says
            return hold.copy().completeOnTimeout(null, Hold.LIMIT.toMillis(), TimeUnit.MILLISECONDS)
                    .thenCompose(ignored -> resolve(databaseId, holds.get(databaseId) == hold));
        }
        return resolve(databaseId, false);
    }

    private CompletableFuture<Optional<Backend>> resolve(String databaseId, boolean heldTooLong) {
        if (heldTooLong) {
            log.warn("a connection to {} waited {} for a move's cutover; sending it on", databaseId, Hold.LIMIT);
        }
        return CompletableFuture.supplyAsync(() -> store.find(databaseId), workers).thenCompose(found -> {
            if (found.isEmpty()) {
                return CompletableFuture.completedFuture(Optional.empty());
            }
            DatabaseRecord record = found.get();
            if (record.state() == DatabaseState.RUNNING) {
                return CompletableFuture.completedFuture(backend(record));
            }
            if (record.state() != DatabaseState.SUSPENDED) {
                return CompletableFuture.completedFuture(Optional.empty());
            }
            return wakes.computeIfAbsent(databaseId, id -> CompletableFuture.supplyAsync(() -> {
                try {
                    return withLock(id, () -> wake(id));
                } finally {
                    wakes.remove(id);
                }
            }, workers));
        });
    }

    /**
     * New connections to a database wait (in the proxy and the broker) until the hold is released, at most
     * {@link #LIMIT}; then they go where the database record says. Releasing is idempotent.
     */
    final class Hold {
        static final Duration LIMIT = Duration.ofSeconds(30);
        private final String id;
        private final CompletableFuture<Void> gate;

        private Hold(String id, CompletableFuture<Void> gate) {
            this.id = id;
            this.gate = gate;
        }

        void release() {
            holds.remove(id, gate);
            gate.complete(null);
        }
    }

    /** Holds new connections to {@code id} until the returned hold is released (a move's cutover). */
    Hold hold(String id) {
        CompletableFuture<Void> gate = new CompletableFuture<>();
        if (holds.putIfAbsent(id, gate) != null) {
            throw new PalisadeException(ErrorCode.CONFLICT, "connections to " + id + " are already held");
        }
        return new Hold(id, gate);
    }

    /** Pooled connections to {@code id} (the broker's) must go: the server behind them changes or ends them. */
    void invalidateConnections(String id) {
        connectionsInvalidated.accept(id);
    }

    /**
     * The login of a database that takes connections (running, or suspended and so woken by {@link #resolve}), from the
     * store only: nothing is woken or contacted.
     */
    @Override
    public CompletableFuture<Optional<TenantCredentials>> credentials(String databaseId) {
        return CompletableFuture.supplyAsync(() -> store.find(databaseId)
                .filter(r -> r.state() == DatabaseState.RUNNING || r.state() == DatabaseState.SUSPENDED)
                .map(this::credentials), workers);
    }

    private static Optional<Backend> backend(DatabaseRecord record) {
        return record.endpoint().map(endpoint -> new Backend(endpoint, record.username(), record.database(),
                record.serverLogin().orElseGet(() -> new ServerLogin(record.username(), record.database()))));
    }

    private Optional<Backend> wake(String id) {
        DatabaseRecord record = store.find(id).orElse(null);
        if (record == null) {
            return Optional.empty();
        }
        if (record.state() == DatabaseState.SUSPENDED) {
            long started = System.nanoTime();
            record = resumeRecorded(record, driverFor(record));
            wakeCount.incrementAndGet();
            log.info("woke {} in {} ms", id, (System.nanoTime() - started) / 1_000_000);
        }
        return record.state() == DatabaseState.RUNNING ? backend(record) : Optional.empty();
    }

    private DatabaseRecord resumeRecorded(DatabaseRecord record, IsolationDriver driver) {
        String id = record.id();
        try {
            RunningInstance instance = driver.resume(spec(record), phase -> log.info("resume {}: {}", id, phase));
            recordInstance(id, instance);
            store.touch(id, Instant.now());
            DatabaseRecord running = store.transition(id, DatabaseState.RUNNING, null);
            afterRunning(running);
            return running;
        } catch (RuntimeException e) {
            log.warn("resume of {} failed: {}", id, e.getMessage());
            return store.transition(id, DatabaseState.FAILED, "resume failed: " + e.getMessage());
        }
    }

    /**
     * Called with a database id whenever pooled connections to it must go: after credential rotation, before suspend
     * and restart, after delete, before an in-place restore's swap and at a move's cutover (the broker evicts its pool,
     * the proxy closes its parked backend connections).
     */
    public void setConnectionsInvalidated(java.util.function.Consumer<String> listener) {
        this.connectionsInvalidated = requireNonNull(listener, "listener is null");
    }

    /** How many times a suspended database was resumed (by a connection or the API) since start. */
    public long wakeCount() {
        return wakeCount.get();
    }

    /** How the proxy and broker report open client connections per database (idle detection). */
    public void setOpenConnections(java.util.function.ToIntFunction<String> counter) {
        this.openConnections = requireNonNull(counter, "counter is null");
    }

    public DatabaseRecord suspend(String accountId, String id) {
        get(accountId, id);
        return withLock(id, () -> {
            requireNoMove(id, "suspend it");
            DatabaseRecord record = store.find(id).orElseThrow(() -> notFound(id));
            IsolationDriver driver = driverFor(record);
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
        connectionsInvalidated.accept(record.id());
        stopArchiving(record.id());
        driver.suspend(record.id());
        store.setEndpoint(record.id(), Optional.empty());
        DatabaseRecord suspended = store.transition(record.id(), DatabaseState.SUSPENDED, null);
        log.info("suspended {} in {} ms", record.id(), (System.nanoTime() - started) / 1_000_000);
        return suspended;
    }

    public DatabaseRecord resume(String accountId, String id) {
        get(accountId, id);
        resolve(id).join();
        return get(accountId, id);
    }

    /** Suspends running databases that have been idle longer than their {@code suspend_after_seconds}. */
    public List<String> suspendIdle(Instant now) {
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
                    || moves != null && moves.moving(snapshot.id())) {
                continue;
            }
            withLock(snapshot.id(), () -> {
                DatabaseRecord current = store.find(snapshot.id()).orElse(null);
                if (current != null && current.state() == DatabaseState.RUNNING
                        && !current.lastActiveAt().plusSeconds(current.suspendAfterSeconds()).isAfter(now)
                        && openConnections.applyAsInt(current.id()) == 0) {
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

    @Override
    public void touch(String databaseId) {
        workers.execute(() -> store.touch(databaseId, Instant.now()));
    }

    /**
     * The database's login for a caller presenting its broker token or the API key of the account that owns it;
     * empty for anything else, an unknown id or another account's database. Both lookups run every time, so that an
     * unknown id, a wrong token and a foreign key take the same work.
     */
    @Override
    public Optional<TenantCredentials> verify(String databaseId, String token) {
        byte[] presented = SecretBox.hash(token).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Optional<DatabaseRecord> record = store.find(databaseId);
        Optional<String> keyAccount = store.accountForKey(token);
        boolean tokenMatches = record.isPresent() && java.security.MessageDigest.isEqual(
                record.get().brokerTokenHash().getBytes(java.nio.charset.StandardCharsets.UTF_8), presented);
        boolean keyMatches = record.isPresent() && keyAccount.isPresent()
                && keyAccount.get().equals(record.get().accountId());
        return tokenMatches || keyMatches ? record.map(this::credentials) : Optional.empty();
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
        return driverFor(record).adminAccess(id);
    }

    /** Where a running database's tenant lives on its server, with superuser access (moves, operators' checks). */
    public io.palisade.spi.TenantPlace tenantPlace(String id) {
        DatabaseRecord record = store.find(id).orElseThrow(() -> notFound(id));
        if (record.state() != DatabaseState.RUNNING) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is " + record.state().wireName());
        }
        return driverFor(record).tenantPlace(id);
    }

    /** Archiving for what runs, none for what does not; then retention. Called by the reconcile loop. */
    public void reconcileBackups() {
        BackupService backupService = backups;
        if (backupService == null) {
            return;
        }
        for (DatabaseRecord record : store.listByHost(hostId)) {
            if (record.state() == DatabaseState.RUNNING) {
                withLock(record.id(), () -> {
                    store.find(record.id()).ifPresent(this::afterRunning);
                    return null;
                });
            } else if (!record.state().isTransitional()) {
                backupService.stopArchiving(record.id());
            }
        }
        try {
            backupService.prune(Instant.now());
        } catch (RuntimeException e) {
            log.warn("retention pruning failed: {}", e.getMessage());
        }
    }

    MetadataStore store() {
        return store;
    }

    SecretBox secrets() {
        return secrets;
    }

    IsolationDriver driver(DatabaseRecord record) {
        return driverFor(record);
    }

    /** The driver of a rung; INVALID_REQUEST naming the rungs this host runs when it runs none for that rung. */
    IsolationDriver driver(Rung rung) {
        IsolationDriver driver = drivers.get(rung);
        if (driver == null) {
            throw PalisadeException.invalid("isolation '" + rung.wireName() + "' is not run by this host; available"
                    + " here: " + drivers.keySet().stream().map(Rung::wireName).sorted().toList());
        }
        return driver;
    }

    // helpers

    private IsolationDriver driverFor(DatabaseRecord record) {
        IsolationDriver driver = drivers.get(record.isolation());
        if (driver == null) {
            throw new PalisadeException(ErrorCode.INTERNAL,
                    "database " + record.id() + " uses isolation '" + record.isolation() + "', which this host does not run");
        }
        return driver;
    }

    static InstanceSpec spec(DatabaseRecord record) {
        return new InstanceSpec(record.id(), record.version(), record.plan(), record.username(), record.database());
    }

    static PalisadeException notFound(String id) {
        return PalisadeException.notFound("database '" + id + "' not found");
    }

    <T> T withLock(String id, java.util.function.Supplier<T> action) {
        ReentrantLock lock = locks.computeIfAbsent(id, ignored -> new ReentrantLock());
        lock.lock();
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
        if (stopInstancesOnClose) {
            try (ExecutorService stoppers = Executors.newThreadPerTaskExecutor(
                    Thread.ofVirtual().name("palisade-stop-", 0).factory())) {
                for (IsolationDriver driver : drivers.values()) {
                    for (String id : driver.listInstances()) {
                        stoppers.execute(() -> {
                            try {
                                if (driver.isRunning(id)) {
                                    driver.stop(id);
                                }
                            } catch (RuntimeException e) {
                                log.warn("stopping {} failed: {}", id, e.getMessage());
                            }
                        });
                    }
                }
            }
        }
        for (IsolationDriver driver : drivers.values()) {
            try {
                driver.close();
            } catch (RuntimeException e) {
                log.warn("closing driver {} failed: {}", driver.name(), e.getMessage());
            }
        }
    }
}
