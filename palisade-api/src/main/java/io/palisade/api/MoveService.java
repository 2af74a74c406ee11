package io.palisade.api;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.palisade.logical.CopyPlan;
import io.palisade.logical.DdlFreeze;
import io.palisade.logical.LogicalCopy;
import io.palisade.logical.Refusal;
import io.palisade.logical.Refusals;
import io.palisade.logical.Source;
import io.palisade.logical.Target;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.Rung;
import io.palisade.spi.TenantPlace;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MoveCatalog;
import io.palisade.store.MovePhase;
import io.palisade.store.MoveRecord;
import io.palisade.store.SecretBox;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Moves between rungs ({@code POST /v1/databases/{id}/isolation}): checks a request, records the move and runs it
 * ({@link MoveRun}) in the background; reports it; cancels it before the cutover; settles what a stopped palisade left
 * half-way ({@link #recover}). A database keeps its id, URL, password and broker token across a move. Thread-safe.
 */
public final class MoveService implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(MoveService.class);
    private static final Duration CANCEL_WAIT = Duration.ofMinutes(2);

    /** Body of {@code POST /v1/databases/{id}/isolation}. */
    public record MoveRequest(
            @JsonProperty("isolation") String isolation,
            @JsonProperty("plan") String plan,
            @JsonProperty("cpu") Integer cpu,
            @JsonProperty("memory_mb") Integer memoryMb) {}

    private final DatabaseService databases;
    private final MoveCatalog catalog;
    private final Map<String, MoveRun> running = new ConcurrentHashMap<>();
    /** Why {@link #recover} could not settle a move yet, by move id (to log each reason once). */
    private final Map<String, String> unsettled = new ConcurrentHashMap<>();
    private final ExecutorService threads = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("palisade-move-", 0).factory());

    public MoveService(DatabaseService databases) {
        this.databases = requireNonNull(databases, "databases is null");
        this.catalog = databases.store().moves();
    }

    /**
     * Checks the request (target rung run here and usable, not the current one, a running database, nothing the logical
     * path cannot take along), records the move and starts it. Returns the move as recorded.
     */
    public MoveRecord start(String accountId, String id, MoveRequest request) {
        DatabaseRecord found = databases.get(accountId, id);
        if (request == null || request.isolation() == null) {
            throw PalisadeException.invalid("\"isolation\" is required: vm, process, database or schema");
        }
        Rung to = Rung.fromWire(request.isolation());
        return databases.withLock(id, () -> {
            DatabaseRecord record = databases.store().find(id).orElseThrow(() -> DatabaseService.notFound(id));
            if (record.isolation() == to) {
                throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " already runs on the "
                        + to.wireName() + " rung; to change its plan, move it to another rung");
            }
            if (record.state() != DatabaseState.RUNNING) {
                throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is " + record.state().wireName()
                        + "; only a running database can move"
                        + (record.state() == DatabaseState.SUSPENDED ? " (resume it first)" : ""));
            }
            if (running.containsKey(id)) {
                throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " is already being moved; wait"
                        + " for that move to end or cancel it (DELETE /v1/databases/" + id + "/move)");
            }
            IsolationDriver source = databases.driver(record);
            IsolationDriver target = databases.driver(to);
            DriverProbe probe = databases.probes().get(to);
            if (!probe.usable()) {
                throw new PalisadeException(ErrorCode.CAPACITY_EXHAUSTED, "the " + to.wireName()
                        + " rung is not usable on this host: " + probe.reason());
            }
            if (to == Rung.SCHEMA && running.values().stream().anyMatch(r -> r.move().to() == Rung.SCHEMA)) {
                throw new PalisadeException(ErrorCode.CONFLICT, "another move into the schema rung is under way (their"
                        + " copies share the shared database's staging); retry when it ends");
            }
            Plan plan = plan(request, record.plan());
            checkMovable(source, record);
            MoveRecord move = new MoveRecord(SecretBox.randomId("mv"), id, record.accountId(), record.isolation(), to,
                    record.plan(), plan, MovePhase.PREPARING, Optional.of("checking and creating the target"), 0, 0, 0,
                    Optional.empty(), Instant.now(), Instant.now(), Optional.empty());
            // the new plan replaces the old one in the account's totals
            databases.withinQuota(record.accountId(), plan, Optional.of(id), () -> {
                catalog.insert(move);
                return null;
            });
            MoveRun run = new MoveRun(this, databases, move, record, source, target);
            running.put(id, run);
            threads.execute(run);
            return catalog.find(move.id()).orElseThrow();
        });
    }

    /** The database's latest move (running or finished), if it ever moved. */
    public Optional<MoveRecord> latest(String accountId, String id) {
        databases.get(accountId, id);
        return catalog.latest(id);
    }

    /**
     * Cancels the database's running move and waits until it is undone; CONFLICT when none runs or its cutover has
     * begun (it then ends by itself within a minute).
     */
    public MoveRecord cancel(String accountId, String id) {
        databases.get(accountId, id);
        MoveRun run = running.get(id);
        if (run == null) {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + id + " has no move under way");
        }
        if (!run.cancel()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "move " + run.move().id() + " of " + id + " has begun its"
                    + " cutover and cannot be cancelled any more; it ends within a minute (GET /v1/databases/" + id
                    + "/move)");
        }
        awaitQuietly(run);
        return catalog.find(run.move().id()).orElseThrow();
    }

    /** Whether a move of the database is under way (other operations on it wait for its end or refuse). */
    public boolean moving(String id) {
        return running.containsKey(id);
    }

    /** Whether the store holds a move of the database that has not finished (running, or left by a stopped palisade). */
    boolean unsettled(String id) {
        return catalog.latest(id).map(move -> !move.phase().finished()).orElse(false);
    }

    /** Before a delete: a move under way is cancelled (or, past its cutover, waited for). */
    void stopForDelete(String id) {
        MoveRun run = running.get(id);
        if (run != null) {
            run.cancel();
            awaitQuietly(run);
        }
    }

    private void awaitQuietly(MoveRun run) {
        try {
            if (!run.await(CANCEL_WAIT)) {
                log.warn("move {} did not end within {}", run.move().id(), CANCEL_WAIT);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    void ended(MoveRun run) {
        running.remove(run.move().databaseId(), run);
    }

    /**
     * Settles the moves no run of this palisade owns: at start-up, after the first reconcile (so every recorded instance
     * runs), those a stopped palisade left half-way, and again on every reconcile pass those it could not settle yet. A
     * move that was switched gets its source removed; any other is undone (the copy removed from both sides, the target
     * destroyed, the tenant's role may log in again), once its source runs. Returns one line per move settled.
     */
    public List<String> recover() {
        List<String> actions = new ArrayList<>();
        for (MoveRecord snapshot : catalog.unfinished()) {
            String id = snapshot.databaseId();
            try {
                // under the database's lock, as start takes it: a move being started is seen running, and one whose
                // run just ended is seen finished
                databases.withLock(id, () -> {
                    Optional<MoveRecord> move = catalog.find(snapshot.id()).filter(m -> !m.phase().finished());
                    if (running.containsKey(id) || move.isEmpty()) {
                        return null;
                    }
                    actions.add(settle(move.get()));
                    return null;
                });
                unsettled.remove(snapshot.id());
            } catch (RuntimeException e) {
                String reason = String.valueOf(e.getMessage());
                if (!reason.equals(unsettled.put(snapshot.id(), reason))) {
                    log.warn("cannot settle move {} of {} yet (retried on every reconcile pass): {}", snapshot.id(),
                            id, reason);
                }
            }
        }
        actions.forEach(action -> log.info("moves: {}", action));
        return actions;
    }

    private String settle(MoveRecord move) {
        String id = move.databaseId();
        if (move.phase().switched()) {
            removeSource(move);
            return "finished move " + move.id() + " of " + id + " to " + move.to();
        }
        undoInterrupted(move, databases.store().find(id));
        catalog.finish(move.id(), MovePhase.FAILED, "palisade stopped during the " + move.phase().wireName()
                + " phase; the move was undone and the database stays on " + move.from().wireName());
        return "undid move " + move.id() + " of " + id + " (was " + move.phase().wireName() + ")";
    }

    /**
     * The copy removed from both sides, the target destroyed, the tenant's role may log in again; a source that does
     * not run (it failed to start) is cleaned once it runs (CONFLICT until then).
     */
    private void undoInterrupted(MoveRecord move, Optional<DatabaseRecord> record) {
        boolean onSource = record.isPresent() && record.get().isolation() == move.from();
        boolean sourceRuns = onSource && record.get().state() == DatabaseState.RUNNING;
        if (sourceRuns) {
            cleanUpCopy(move, record.get());
        }
        IsolationDriver target = databases.driver(move.to());
        if (target.listInstances().contains(move.databaseId())) {
            target.destroy(move.databaseId());
        }
        if (onSource && !sourceRuns) {
            throw new PalisadeException(ErrorCode.CONFLICT, "the source of move " + move.id() + " is "
                    + record.get().state().wireName() + "; what the copy left there is removed once it runs");
        }
        if (sourceRuns) {
            cleanUpSource(move, record.get());
            restoreLogin(move, record.get());
        }
    }

    /** Gives LOGIN back to the tenant's role on the move's source, over a new connection. */
    void restoreLogin(MoveRecord move, DatabaseRecord record) {
        TenantPlace from = databases.driver(record).tenantPlace(record.id());
        try (Connection c = MoveConnections.superuser(from)) {
            new TenantSessions(c, from).restoreLogin();
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot give LOGIN back to the tenant on the"
                    + " source of move " + move.id() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Removes what a move's copy left on both sides over new connections, for when the run's own are gone (palisade
     * stopped, or a server restarted): above all the subscription on the target, which a shared server's {@code DROP
     * DATABASE} refuses to drop along ("being used by logical replication subscription") and the schema rung's shared
     * database would keep. The target is started for it if it does not run. Best effort: the caller destroys the target
     * and cleans the source next, whatever happens here.
     */
    void cleanUpCopy(MoveRecord move, DatabaseRecord record) {
        String id = record.id();
        try {
            IsolationDriver target = databases.driver(move.to());
            if (!target.listInstances().contains(id)) {
                return;
            }
            TenantPlace to = reachable(target, move, record);
            TenantPlace from = databases.driver(record).tenantPlace(id);
            CopyPlan plan = new CopyPlan(MoveRun.copyName(move), new Source(from.namespace(), from.role()),
                    from.database(), from.server(), new Target(to.namespace(), to.role(), to.extensionSchema()));
            try (Connection source = MoveConnections.superuser(from);
                    Connection copy = MoveConnections.superuser(to)) {
                LogicalCopy.cleanUp(source, copy, plan);
            }
        } catch (RuntimeException | SQLException e) {
            log.warn("move {} of {}: removing the copy from its target failed: {}", move.id(), id, e.getMessage());
        }
    }

    /** Where the tenant lives on the move's target; the target is started first if it does not run. */
    private static TenantPlace reachable(IsolationDriver target, MoveRecord move, DatabaseRecord record) {
        try {
            return target.tenantPlace(record.id());
        } catch (PalisadeException notRunning) {
            target.start(new InstanceSpec(record.id(), record.version(), move.toPlan(), record.username(),
                    record.database()), ProgressListener.NONE);
            return target.tenantPlace(record.id());
        }
    }

    /** Removes what a move's copy left on the source (its target is already gone). */
    void cleanUpSource(MoveRecord move, DatabaseRecord record) {
        try {
            IsolationDriver source = databases.driver(record);
            TenantPlace from = source.tenantPlace(record.id());
            Source tenant = new Source(from.namespace(), from.role());
            CopyPlan plan = new CopyPlan(MoveRun.copyName(move), tenant, from.database(), from.server(),
                    Target.ownDatabase(from.namespace(), from.role()));
            try (Connection c = MoveConnections.superuser(from)) {
                try {
                    LogicalCopy.cleanUpSource(c, plan);
                } finally {
                    DdlFreeze.remove(c, plan); // whatever the copy's clean-up left: the tenant's DDL must not stay held
                }
            }
        } catch (RuntimeException | SQLException e) {
            log.warn("move {} of {}: cleaning the source failed: {}", move.id(), record.id(), e.getMessage());
        }
    }

    /** After the switch: archiving starts over on the target, the source instance goes, the move is done. */
    void removeSource(MoveRecord move) {
        String id = move.databaseId();
        databases.backups().ifPresent(backups -> backups.startOver(id));
        IsolationDriver source = databases.driver(move.from());
        if (source.listInstances().contains(id)) {
            source.destroy(id);
        }
        databases.store().find(id).ifPresent(databases::afterRunning);
        catalog.finish(move.id(), MovePhase.DONE, "the database runs on " + move.to().wireName()
                + (databases.driver(move.to()).supportsRestore() && databases.backups().isPresent()
                        ? "; its restorable window starts at the move (a new archive with a new base backup)"
                        : move.from() == Rung.PROCESS || move.from() == Rung.VM
                                ? "; backups stop here (the " + move.to().wireName() + " rung has none), the earlier"
                                        + " archive is kept for its retention"
                                : ""));
        log.info("move {} of {} done: the {} source is removed", move.id(), id, move.from());
    }

    private void checkMovable(IsolationDriver source, DatabaseRecord record) {
        TenantPlace from = source.tenantPlace(record.id());
        try (Connection c = MoveConnections.superuser(from)) {
            try (Statement s = c.createStatement(); var rs = s.executeQuery("select current_setting('wal_level')")) {
                rs.next();
                if (!"logical".equals(rs.getString(1))) {
                    throw new PalisadeException(ErrorCode.CONFLICT, "database " + record.id() + "'s server runs with"
                            + " wal_level = " + rs.getString(1) + ", a move needs logical; restart the database"
                            + " (POST /v1/databases/" + record.id() + "/restart) so that it starts with the current"
                            + " settings, then move it; nothing was changed");
                }
            }
            Source tenant = new Source(from.namespace(), from.role());
            List<Refusal> refusals = Refusals.find(c, tenant);
            if (!refusals.isEmpty()) {
                throw Refusals.asError(tenant, refusals);
            }
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot read the catalog of " + record.id()
                    + " before the move: " + e.getMessage(), e);
        }
    }


    private static Plan plan(MoveRequest request, Plan current) {
        Plan plan = request.plan() == null ? current : Plan.byName(request.plan());
        return plan.withCpuAndMemory(request.cpu(), request.memoryMb());
    }

    /** Stops every running move: they are undone by the next start's {@link #recover}. */
    @Override
    public void close() {
        threads.shutdownNow();
        try {
            if (!threads.awaitTermination(60, java.util.concurrent.TimeUnit.SECONDS)) {
                log.warn("moves still running at shutdown: {}; the next start settles them", running.keySet());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
