package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.logical.CopyPlan;
import io.palisade.logical.CopyProgress;
import io.palisade.logical.DdlFreeze;
import io.palisade.logical.LogicalCopy;
import io.palisade.logical.SchemaExtractor;
import io.palisade.logical.SchemaReplayer;
import io.palisade.logical.SchemaScript;
import io.palisade.logical.Source;
import io.palisade.logical.Target;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.HostRoute;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Rung;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantPlace;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.MoveCatalog;
import io.palisade.store.MovePhase;
import io.palisade.store.MoveRecord;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One move of one database between rungs, by the logical path, from start to end on its own thread:
 * <ol>
 *   <li>{@link MovePhase#PREPARING}: the target instance is created next to the source, with the same id and
 *       credentials.</li>
 *   <li>{@link MovePhase#COPYING}: the tenant's schema is read from the source's catalog and replayed on the target,
 *       then its rows follow by logical replication while the tenant keeps reading and writing the source.</li>
 *   <li>{@link MovePhase#CUTOVER} once the copy is caught up: new connections are held by the proxy and the broker
 *       ({@link DatabaseService#hold}); in-flight transactions get a moment to finish; the source's tenant role loses
 *       LOGIN and its sessions end (57P01, retryable); the target confirms every change the source wrote, sequences
 *       are set, the copy is removed from both sides.</li>
 *   <li>{@link MovePhase#SWITCHED}: in one store transaction the database record names the target; held connections
 *       continue there. The source instance is removed and archiving starts over on the target.</li>
 * </ol>
 * Anything failing before the switch, or a cancel, undoes the move: the copy is removed from both sides, the source's
 * role may log in again, held connections go to the source, the target instance is destroyed. The copy fails when a
 * server under it stops or restarts (its connections are gone with it; a retry of the move starts afresh), and when the
 * target's replication workers keep failing without the copy advancing ({@link CopyWatch}, e.g. a full disk); the
 * reason names the instance's last logged problem. Thread-safe: the run is
 * one thread; {@link #cancel} and {@link #await} may be called from any.
 */
final class MoveRun implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(MoveRun.class);
    private static final Duration DRAIN = Duration.ofSeconds(1);
    /** How long transactions begun before the hold on schema changes may take to end. */
    private static final Duration PRE_FREEZE_TRANSACTIONS = Duration.ofSeconds(30);
    /** How long the initial copy may make no progress at all before the move gives up. */
    private static final Duration NO_PROGRESS = Duration.ofMinutes(3);
    private static final Duration UNREACHABLE = Duration.ofSeconds(60);

    private final MoveService owner;
    private final DatabaseService databases;
    private final MoveCatalog catalog;
    private final MoveRecord move;
    private final DatabaseRecord record;
    private final IsolationDriver source;
    private final IsolationDriver target;
    private final CountDownLatch done = new CountDownLatch(1);

    private boolean cancelRequested;
    private boolean cutoverStarted;
    private volatile MovePhase outcome;

    MoveRun(MoveService owner, DatabaseService databases, MoveRecord move, DatabaseRecord record,
            IsolationDriver source, IsolationDriver target) {
        this.owner = requireNonNull(owner, "owner is null");
        this.databases = requireNonNull(databases, "databases is null");
        this.catalog = databases.store().moves();
        this.move = requireNonNull(move, "move is null");
        this.record = requireNonNull(record, "record is null");
        this.source = requireNonNull(source, "source is null");
        this.target = requireNonNull(target, "target is null");
    }

    MoveRecord move() {
        return move;
    }

    /** Asks the move to stop; false when the cutover has begun (it then runs to its end). */
    synchronized boolean cancel() {
        if (cutoverStarted) {
            return false;
        }
        cancelRequested = true;
        return true;
    }

    private synchronized boolean beginCutover() {
        if (cancelRequested) {
            return false;
        }
        cutoverStarted = true;
        return true;
    }

    private synchronized boolean cancelRequested() {
        return cancelRequested;
    }

    /** Waits until the run has ended (moved, undone or failed); false on timeout. */
    boolean await(Duration timeout) throws InterruptedException {
        return done.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public void run() {
        String id = record.id();
        State state = new State();
        try {
            log.info("move {} of {}: {} → {} (plan {})", move.id(), id, move.from(), move.to(), move.toPlan().name());
            RunningInstance created = target.provision(new io.palisade.spi.InstanceSpec(id, record.version(), move.toPlan(),
                            record.username(), record.database()),
                    databases.credentials(record), phase -> catalog.phase(move.id(), MovePhase.PREPARING,
                            "creating the " + move.to().wireName() + " instance: " + phase));
            state.targetCreated = true;
            copy(state);
            cutover(state, created);
        } catch (RuntimeException | SQLException e) {
            state.switched |= recordedOnTarget();
            if (state.switched) {
                log.warn("move {} of {}: switched, but cleaning up the source failed: {}", move.id(), id,
                        e.getMessage());
            } else {
                boolean cancelled = e instanceof Cancelled;
                String reason = cancelled ? "cancelled on request" : message(e);
                log.warn("move {} of {} {}: undoing it, the tenant stays on {}", move.id(), id,
                        cancelled ? "cancelled" : "failed (" + reason + ")", move.from());
                undo(state);
                outcome = cancelled ? MovePhase.CANCELLED : MovePhase.FAILED;
                catalog.finish(move.id(), outcome, cancelled ? "cancelled before the cutover; the database stays on "
                        + move.from().wireName() : reason + "; the database stays on " + move.from().wireName());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            undo(state);
            outcome = MovePhase.FAILED;
            catalog.finish(move.id(), outcome, "interrupted (palisade is stopping); the database stays on "
                    + move.from().wireName());
        } finally {
            state.closeConnections();
            if (state.switched) {
                finishSwitched();
            }
            owner.ended(this);
            done.countDown();
        }
    }

    private void copy(State state) throws SQLException, InterruptedException {
        String id = record.id();
        checkCancel();
        TenantPlace from = source.tenantPlace(id);
        TenantPlace to = target.tenantPlace(id);
        String password = databases.credentials(record).password();
        state.from = from;
        state.source = MoveConnections.superuser(from);
        state.target = MoveConnections.superuser(to);
        Source tenant = new Source(from.namespace(), from.role());
        state.route = target.routeToHost(id, from.server());
        CopyPlan plan = new CopyPlan(copyName(move), tenant, from.database(), state.route.endpoint(),
                new Target(to.namespace(), to.role(), to.extensionSchema()));
        state.plan = plan;
        DdlFreeze.install(state.source, plan);
        state.frozen = true;
        // reported only now: from "copying" on, the tenant's schema is held still (clients and tests rely on it)
        catalog.phase(move.id(), MovePhase.COPYING, "copying the schema");
        TenantSessions sessions = new TenantSessions(state.source, from);
        sessions.awaitTransactionsBegunBefore(sessions.now(), PRE_FREEZE_TRANSACTIONS);
        // the tenant's schema is read and replayed over its own logins: whatever of its code runs, runs as the tenant
        try (Connection tenantSource = MoveConnections.tenant(from, password);
                Connection tenantTarget = MoveConnections.tenant(to, password)) {
            state.script = SchemaExtractor.extract(tenantSource, tenant, plan.target());
            SchemaReplayer.replay(tenantTarget, state.script);
        }
        checkCancel();
        catalog.phase(move.id(), MovePhase.COPYING, "copying rows by logical replication");
        state.copy = LogicalCopy.start(state.source, state.target, plan);
        CopyWatch watch = new CopyWatch(CopyWatch.STALL, System.nanoTime());
        long unreachableSince = 0;
        long copiedSince = 0;
        long lastDetail = 0;
        long lastMark = -1;
        long lastAdvance = System.nanoTime();
        CutoverGate gate = new CutoverGate();
        while (true) {
            checkCancel();
            CopyProgress progress;
            try {
                progress = state.copy.progress();
            } catch (PalisadeException e) {
                // a server that stopped or restarted took the copy's connections along: the copy cannot go on
                if (!target.isRunning(id) || !valid(state.target)) {
                    throw serverLost(target, move.to(), "target", e);
                }
                if (!source.isRunning(id) || !valid(state.source)) {
                    throw serverLost(source, move.from(), "source", e);
                }
                // anything else (a query cancelled or timed out) is retried, within a bound
                unreachableSince = unreachableSince == 0 ? System.nanoTime() : unreachableSince;
                if (System.nanoTime() - unreachableSince > UNREACHABLE.toNanos()) {
                    throw e;
                }
                log.warn("move {} of {}: progress unavailable ({}); retrying", move.id(), id, e.getMessage());
                Thread.sleep(500);
                continue;
            }
            unreachableSince = 0;
            catalog.progress(move.id(), progress.copiedBytes(), progress.totalBytes(), progress.lagBytes());
            long now = System.nanoTime();
            long mark = progress.copiedBytes() + progress.tables().values().stream()
                    .filter(t -> t == CopyProgress.TableState.READY).count();
            if (mark != lastMark || progress.copied()) {
                lastMark = mark;
                lastAdvance = now;
            } else if (now - lastAdvance > NO_PROGRESS.toNanos()) {
                throw new PalisadeException(ErrorCode.TIMEOUT, "the initial copy made no progress for "
                        + NO_PROGRESS.toMinutes() + " min (" + progress.summary() + "); a transaction left open on the"
                        + " source server holds the copy's slots back: end it, then move again");
            }
            if (gate.ready(progress, now)) {
                state.catchUpBound = gate.catchUpBound(now);
                return;
            }
            if (progress.copied()) {
                copiedSince = copiedSince == 0 ? now : copiedSince;
                if (now - lastDetail > Duration.ofSeconds(2).toNanos()) {
                    catalog.phase(move.id(), MovePhase.COPYING, gate.describe(now));
                    lastDetail = now;
                }
            }
            if (watch.stalled(progress, System.nanoTime())) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the copy into the " + move.to().wireName()
                        + " instance stopped advancing: its replication workers failed " + watch.newErrors(progress)
                        + " time(s) and nothing advanced for " + CopyWatch.STALL.toSeconds() + " s ("
                        + problem(target).orElse(progress.summary()) + "); remove the cause, then retry the move");
            }
            Thread.sleep(copiedSince == 0 ? 500 : 100);
        }
    }


    /** The copy cannot go on: one side's server stopped or restarted (its log says why, if it does). */
    private PalisadeException serverLost(IsolationDriver driver, Rung rung, String side, PalisadeException cause) {
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "the move's " + side + " (the " + rung.wireName()
                + " instance) stopped or restarted during the copy ("
                + problem(driver).map(line -> "its log: " + line).orElse(cause.getMessage())
                + "); fix the cause, then retry the move", cause);
    }

    /** The last problem the instance's PostgreSQL log names, if it can be read. */
    private Optional<String> problem(IsolationDriver driver) {
        try {
            return CopyWatch.lastProblem(driver.logTail(record.id(), CopyWatch.LOG_LINES));
        } catch (RuntimeException e) {
            return Optional.empty();
        }
    }

    private static boolean valid(Connection connection) {
        try {
            return connection.isValid(2);
        } catch (SQLException e) {
            return false;
        }
    }

    private void cutover(State state, RunningInstance created) throws SQLException, InterruptedException {
        String id = record.id();
        if (!beginCutover()) {
            throw new Cancelled();
        }
        catalog.phase(move.id(), MovePhase.CUTOVER, "holding new connections; ending the tenant's sessions on the "
                + move.from().wireName() + " instance");
        // the copy took one database: one made inside the source's server since (the broker's v1/databases) would go
        // with the source, so the source is read again and the move stops if it has more than one; read before the
        // hold, while the tenant's role can still log in (the vm rung counts databases owned by a login role)
        source.tenantPlace(id);
        // logged in before the hold: nothing the cutover waits for should be a login
        try (Connection tenantTarget = MoveConnections.tenant(target.tenantPlace(id),
                databases.credentials(record).password())) {
            Steps steps = new Steps();
            state.hold = databases.hold(id);
            TenantSessions sessions = new TenantSessions(state.source, state.from);
            sessions.drain(DRAIN);
            steps.done("drain");
            sessions.revokeLogin();
            state.loginRevoked = true;
            sessions.terminate(Duration.ofSeconds(10));
            databases.invalidateConnections(id);
            steps.done("sessions");
            catalog.phase(move.id(), MovePhase.CUTOVER, "waiting for the last changes; setting sequences");
            state.copy.awaitCaughtUp(state.catchUpBound);
            steps.done("catch-up");
            state.copy.syncSequences();
            steps.done("sequences");
            state.copy.finish();
            state.copy = null;
            steps.done("copy removed");
            SchemaReplayer.afterCopy(tenantTarget, state.script);
            steps.done("after-copy DDL");
            long cutoverMillis = steps.totalMillis();
            databases.withLock(id, () -> {
                catalog.switchDatabase(move.id(), id, move.to(), move.toPlan(), created.endpoint(),
                        created.serverLogin(), cutoverMillis);
                return null;
            });
            state.switched = true;
            state.hold.release();
            databases.invalidateConnections(id);
            log.info("move {} of {}: switched to {} after a cutover of {} ms ({})", move.id(), id, move.to(),
                    cutoverMillis, steps);
        }
        // the source goes next; its hold on schema changes goes with it
    }

    /** How long each step of the cutover took, for the log. Not thread-safe. */
    private static final class Steps {
        private final long started = System.nanoTime();
        private long last = started;
        private final StringBuilder text = new StringBuilder();

        void done(String step) {
            long now = System.nanoTime();
            text.append(text.isEmpty() ? "" : ", ").append(step).append(' ').append((now - last) / 1_000_000)
                    .append(" ms");
            last = now;
        }

        long totalMillis() {
            return (System.nanoTime() - started) / 1_000_000;
        }

        @Override
        public String toString() {
            return text.toString();
        }
    }

    /** After the switch: the source goes, archiving starts over on the target. Failures are retried at start-up. */
    private void finishSwitched() {
        try {
            owner.removeSource(move);
            outcome = MovePhase.DONE;
        } catch (RuntimeException e) {
            log.warn("move {} of {}: the {} source instance could not be removed yet ({}); retried at the next start",
                    move.id(), record.id(), move.from(), e.getMessage());
        }
    }

    private void undo(State state) {
        String id = record.id();
        boolean copyLeft = false;
        if (state.copy != null) {
            try {
                state.copy.cancel();
            } catch (RuntimeException e) {
                // the run's connections are gone (a server stopped or restarted): new ones, below
                log.info("move {} of {}: removing the copy over the run's connections failed: {}", move.id(), id,
                        e.getMessage());
                copyLeft = true;
            }
        }
        if (state.route != null) {
            state.route.close();
        }
        if (state.loginRevoked) {
            restoreLogin(state);
        }
        if (state.frozen) {
            try {
                DdlFreeze.remove(state.source, state.plan);
            } catch (RuntimeException e) {
                log.warn("move {} of {}: removing the schema-change hold failed: {}", move.id(), id, e.getMessage());
            }
        }
        if (state.hold != null) {
            state.hold.release();
        }
        state.closeConnections();
        if (copyLeft) {
            owner.cleanUpCopy(move, record);
        }
        if (state.targetCreated || target.listInstances().contains(id)) {
            try {
                target.destroy(id);
            } catch (RuntimeException e) {
                log.warn("move {} of {}: removing the target instance failed: {}", move.id(), id, e.getMessage());
            }
        }
        if (state.from != null) {
            // the target is gone now: whatever the cancel could not reach on the source goes too (copy, hold)
            owner.cleanUpSource(move, record);
        }
    }

    /** Gives LOGIN back to the tenant's role on the source; on a fresh connection if the move's own one is gone. */
    private void restoreLogin(State state) {
        try {
            new TenantSessions(state.source, state.from).restoreLogin();
            return;
        } catch (SQLException e) {
            log.warn("move {} of {}: cannot give LOGIN back over the move's connection ({}); retrying on new ones",
                    move.id(), record.id(), e.getMessage());
        }
        for (int attempt = 1; attempt <= 2; attempt++) {
            try {
                owner.restoreLogin(move, record);
                return;
            } catch (RuntimeException e) {
                log.warn("move {} of {}: cannot give LOGIN back on the source (attempt {}): {}", move.id(),
                        record.id(), attempt, e.getMessage());
            }
        }
    }

    /** Whether the store names the target already (a switch whose commit was not acknowledged still happened). */
    private boolean recordedOnTarget() {
        try {
            return catalog.find(move.id()).map(m -> m.phase().switched()).orElse(false);
        } catch (RuntimeException e) {
            return false;
        }
    }

    private void checkCancel() {
        if (cancelRequested()) {
            throw new Cancelled();
        }
    }

    /** The move's name in PostgreSQL (publication, slot, temporary login): {@code palisade_move_<id>}. */
    static String copyName(MoveRecord move) {
        return move.id().replace('-', '_');
    }

    private static String message(Exception e) {
        String text = e instanceof SQLException sql ? e.getMessage() + " (SQLSTATE " + sql.getSQLState() + ")"
                : e.getMessage();
        return text == null ? e.getClass().getSimpleName() : text;
    }

    Optional<MovePhase> outcome() {
        return Optional.ofNullable(outcome);
    }

    /** What the run made so far, for undo. Confined to the run's thread. */
    private static final class State {
        boolean targetCreated;
        TenantPlace from;
        Connection source;
        Connection target;
        SchemaScript script;
        CopyPlan plan;
        boolean frozen;
        Duration catchUpBound = Duration.ofSeconds(30);
        HostRoute route;
        LogicalCopy copy;
        ConnectionRouting.Hold hold;
        boolean loginRevoked;
        boolean switched;

        void closeConnections() {
            for (Connection connection : new Connection[] {source, target}) {
                if (connection != null) {
                    try {
                        connection.close();
                    } catch (SQLException ignored) {
                        // closing: nothing left to do
                    }
                }
            }
            if (route != null) {
                route.close();
            }
        }
    }

    /** A cancel reached the run before the cutover. */
    private static final class Cancelled extends PalisadeException {
        Cancelled() {
            super(ErrorCode.CONFLICT, "the move was cancelled");
        }
    }
}
