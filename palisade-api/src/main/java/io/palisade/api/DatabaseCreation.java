package io.palisade.api;

import static io.palisade.api.DatabaseService.TENANT_DATABASE;
import static io.palisade.api.DatabaseService.TENANT_ROLE;
import static io.palisade.api.DatabaseService.spec;
import static java.util.Objects.requireNonNull;

import io.palisade.api.DatabaseService.Created;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.Rung;
import io.palisade.spi.RunningInstance;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MetadataStore;
import io.palisade.store.SecretBox;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Creating a database for {@link DatabaseService}: validates the request (rung, plan, version, ttl, labels, suspend
 * after), records the database, provisions its instance under the database's lock on a worker and waits up to the
 * create bound; a failed create leaves nothing behind. Thread-safe: no mutable state of its own; provisioning runs
 * under the per-id lock of {@link DatabaseService#withLock}, quota checks under the account's.
 */
final class DatabaseCreation {
    private static final Logger log = LoggerFactory.getLogger(DatabaseService.class);
    private static final Pattern LABEL = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
    private static final Pattern LABEL_KEY = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/-]{0,62}");

    private final DatabaseService service;
    private final DatabaseChanges changes;
    private final MetadataStore store;
    private final SecretBox secrets;
    private final Map<Rung, IsolationDriver> drivers;
    private final Map<Rung, DriverProbe> probes;
    private final Rung defaultIsolation;
    private final String hostId;
    private final ExecutorService workers;
    private final Duration createWait;
    private final Optional<Duration> defaultSuspendAfter;

    DatabaseCreation(DatabaseService service, DatabaseChanges changes, Duration createWait,
            Optional<Duration> defaultSuspendAfter) {
        this.service = requireNonNull(service, "service is null");
        this.changes = requireNonNull(changes, "changes is null");
        this.createWait = requireNonNull(createWait, "createWait is null");
        this.defaultSuspendAfter = requireNonNull(defaultSuspendAfter, "defaultSuspendAfter is null");
        this.store = service.store();
        this.secrets = service.secrets();
        this.drivers = service.drivers();
        this.probes = service.probes();
        this.defaultIsolation = service.defaultIsolation();
        this.hostId = service.hostId();
        this.workers = service.workers();
    }

    /** See {@link DatabaseService#create(String, CreateDatabaseRequest)}. */
    Created create(String accountId, CreateDatabaseRequest request) {
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
        service.withinQuota(accountId, plan, Optional.empty(), () -> {
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
                CompletableFuture.supplyAsync(() -> service.withLock(id, () -> provisioner.apply(store.find(id).orElseThrow())), workers);
        try {
            DatabaseRecord done = provisioning.get(createWait.toMillis(), TimeUnit.MILLISECONDS);
            if (done.state() == DatabaseState.FAILED) {
                // the driver already removed what it made; leave nothing behind in the store either
                service.withLock(id, () -> {
                    store.transition(id, DatabaseState.DELETING, done.stateReason());
                    changes.destroyAndForget(id);
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

    /** Provisions a recorded database's instance; the caller holds its lock. Returns the record, running or failed. */
    DatabaseRecord provision(DatabaseRecord record) {
        String id = record.id();
        IsolationDriver driver = service.driver(record);
        long started = System.nanoTime();
        try {
            RunningInstance instance = driver.provision(spec(record), service.credentials(record),
                    phase -> log.info("create {}: {}", id, phase));
            service.recordInstance(id, instance);
            DatabaseRecord running = store.transition(id, DatabaseState.RUNNING, null);
            log.info("created {} in {} ms at {}", id, (System.nanoTime() - started) / 1_000_000, instance.endpoint());
            service.afterRunning(running);
            return running;
        } catch (RuntimeException e) {
            log.warn("create of {} failed: {}", id, e.getMessage());
            return store.transition(id, DatabaseState.FAILED, e.getMessage());
        }
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
}
