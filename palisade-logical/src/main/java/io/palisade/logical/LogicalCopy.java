package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;

/**
 * The data half of a move's logical path: the tenant's rows copied from a source database into a target database whose
 * schema {@link SchemaReplayer} recreated, by PostgreSQL's logical replication (initial copy plus change stream), while
 * the tenant keeps writing to the source. Then, at cutover, with the tenant's writes held: {@link #awaitCaughtUp},
 * {@link #syncSequences}, {@link #finish}; after that {@link SchemaReplayer#afterCopy}.
 *
 * <ol>
 *   <li>Source ({@link CopySource}): a temporary login {@code palisade_move_<id>} (REPLICATION, BYPASSRLS, member of
 *       the tenant's role, random password), replica identity FULL on tables that have none, a publication
 *       {@code FOR TABLES IN SCHEMA} the tenant's namespace.</li>
 *   <li>Target ({@link CopyTarget}): the tables moved into a staging schema named like the source's namespace when the
 *       names differ (logical replication cannot map schema names), {@code NO FORCE ROW LEVEL SECURITY} for the copy,
 *       a subscription with {@code copy_data = true} connecting to {@link CopyPlan#publisher()} over TCP as the
 *       temporary login.</li>
 *   <li>{@link #finish} and {@link #cancel} undo all of it on both sides: subscription, slots (main and initial-copy),
 *       publication, login, replica identities, staging. {@link #cleanUp} does the same for a copy whose
 *       {@code LogicalCopy} is gone (palisade crashed), from the names alone.</li>
 * </ol>
 *
 * <p>Requirements: both connections a superuser's, outside a transaction, to the source and the target database; the
 * source server with {@code wal_level = logical}, free {@code max_replication_slots}/{@code max_wal_senders} (one slot,
 * and up to {@code max_sync_workers_per_subscription} more during the initial copy), a {@code pg_hba.conf} line letting
 * the login connect to the source database from the target server's address with a password; the target server with
 * free logical replication workers. The tenant must not change its schema during the copy (DDL is not replicated).
 *
 * <p>Limits: a table without primary key gets {@code REPLICA IDENTITY FULL} on the source for the move, so each of its
 * UPDATEs and DELETEs is applied on the target by a sequential scan; while the copy runs the target's tables are in
 * the staging schema, so a routine body that names them qualified with the target namespace fails if a check, default
 * or generated column calls it during the copy; the password is part of the subscription's connection string on the
 * target (readable by superusers only, gone with the subscription). Thread-safe: every method holds this object's lock,
 * and the connections are used by one call at a time.
 */
public final class LogicalCopy {
    private enum State { RUNNING, FINISHED, CANCELLED }

    private final Connection source;
    private final Connection target;
    private final CopyPlan plan;
    private final CopySource sourceSide;
    private final CopyTarget targetSide;
    private final Set<String> forced;
    private State state = State.RUNNING;

    private LogicalCopy(Connection source, Connection target, CopyPlan plan, Set<String> forced) {
        this.source = source;
        this.target = target;
        this.plan = plan;
        this.sourceSide = new CopySource(plan);
        this.targetSide = new CopyTarget(plan);
        this.forced = forced;
    }

    /** Sets both sides up and starts the copy; a failure undoes what was done and throws. */
    public static LogicalCopy start(Connection source, Connection target, CopyPlan plan) {
        requireNonNull(source, "source is null");
        requireNonNull(target, "target is null");
        requireNonNull(plan, "plan is null");
        LogicalCopy copy;
        try {
            copy = new LogicalCopy(source, target, plan, forcedOnSource(source, plan));
        } catch (SQLException e) {
            throw failure("read the source's tables", plan, e);
        }
        try {
            String password = copy.sourceSide.setUp(source);
            copy.sourceSide.createSlot(source);
            long subscription = copy.targetSide.setUp(target, password);
            copy.sourceSide.noteSubscription(source, subscription);
            return copy;
        } catch (RuntimeException | SQLException e) {
            try {
                copy.undo();
            } catch (RuntimeException | SQLException cleanup) {
                e.addSuppressed(cleanup);
            }
            if (e instanceof PalisadeException palisade) {
                throw palisade;
            }
            throw failure("start", plan, e);
        }
    }

    /** The copy's progress now; see {@link CopyProgress}. */
    public synchronized CopyProgress progress() {
        requireRunning("report progress");
        try {
            return CopyQueries.progress(source, target, plan, targetSide.tableNamespace());
        } catch (SQLException e) {
            throw failure("read the progress", plan, e);
        }
    }

    /**
     * Waits until every table's initial copy is over and the target has confirmed all WAL the source had written when
     * this call began; returns the progress then. Meant for the cutover, once the tenant's writes are held.
     */
    public synchronized CopyProgress awaitCaughtUp(Duration timeout) {
        requireRunning("wait for the copy to catch up");
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            String goal = new Catalog(source).value("select pg_current_wal_lsn()::text");
            while (true) {
                CopyProgress progress = CopyQueries.progress(source, target, plan, targetSide.tableNamespace());
                if (progress.copied() && CopyQueries.confirmed(source, plan, goal)) {
                    return progress;
                }
                if (System.nanoTime() > deadline) {
                    throw new PalisadeException(ErrorCode.TIMEOUT, "move " + plan.moveId() + ": the copy did not catch"
                            + " up with source WAL position " + goal + " within " + timeout + " (" + progress.summary()
                            + "); look at the target server's log for replication errors, then wait longer or cancel");
                }
                Thread.sleep(100);
            }
        } catch (SQLException e) {
            throw failure("wait for the copy to catch up", plan, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted waiting for move " + plan.moveId()
                    + " to catch up; the copy still runs: wait again or cancel", e);
        }
    }

    /**
     * Sets every sequence of the target's namespace to its source's {@code last_value} and {@code is_called}
     * (replication does not carry sequences); returns how many. Only right once the tenant's writes are held.
     */
    public synchronized int syncSequences() {
        requireRunning("sync sequences");
        try {
            return CopyQueries.syncSequences(source, target, plan, targetSide.tableNamespace());
        } catch (SQLException e) {
            throw failure("sync sequences", plan, e);
        }
    }

    /** Ends the copy: subscription, slots, publication, login, staging and replica identities gone on both sides. */
    public synchronized void finish() {
        requireRunning("finish");
        try {
            undo();
            state = State.FINISHED;
        } catch (SQLException e) {
            throw failure("finish", plan, e);
        }
    }

    /**
     * Stops the copy at any point and removes everything it created on both sides; the source is as before, the
     * target keeps whatever rows arrived (the caller drops the target). Idempotent.
     */
    public synchronized void cancel() {
        if (state != State.RUNNING) {
            return;
        }
        try {
            undo();
            state = State.CANCELLED;
        } catch (SQLException e) {
            throw failure("cancel", plan, e);
        }
    }

    /**
     * Removes what a copy for {@code plan} left on both sides when its {@code LogicalCopy} is gone (palisade stopped
     * mid-move). Idempotent; does nothing where nothing is left.
     */
    public static void cleanUp(Connection source, Connection target, CopyPlan plan) {
        try {
            new LogicalCopy(source, target, plan, forcedOnSource(source, plan)).undo();
        } catch (SQLException e) {
            throw failure("clean up", plan, e);
        }
    }

    /**
     * Removes what a copy for {@code plan} left on the source alone (login, slots, publication, replica identities),
     * for when the target is gone or unreachable: destroy the target first, so that no subscription holds the slot.
     * Only {@link CopyPlan#moveId()} and {@link CopyPlan#source()} matter here. Idempotent.
     */
    public static void cleanUpSource(Connection source, CopyPlan plan) {
        try {
            new CopySource(plan).tearDown(source);
        } catch (SQLException e) {
            throw failure("clean up the source", plan, e);
        }
    }

    private void undo() throws SQLException {
        SQLException first = null;
        try {
            targetSide.tearDown(target, forced);
        } catch (SQLException e) {
            first = e;
        }
        sourceSide.tearDown(source);
        if (first != null) {
            throw first;
        }
    }

    private void requireRunning(String what) {
        if (state != State.RUNNING) {
            throw new PalisadeException(ErrorCode.CONFLICT, "cannot " + what + ": move " + plan.moveId()
                    + "'s copy is " + state.name().toLowerCase(java.util.Locale.ROOT));
        }
    }

    private static Set<String> forcedOnSource(Connection source, CopyPlan plan) throws SQLException {
        return new HashSet<>(CopyTarget.forced(new Catalog(source), plan.source().namespace()));
    }

    private static PalisadeException failure(String what, CopyPlan plan, Exception e) {
        String detail = e instanceof SQLException sql ? e.getMessage() + " (SQLSTATE " + sql.getSQLState() + ")"
                : e.getMessage();
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "move " + plan.moveId() + ": cannot " + what
                + " of the logical copy from " + plan.sourceDatabase() + "." + plan.source().namespace() + " to "
                + plan.target().namespace() + ": " + detail + "; check that both servers are up, then retry; cancel"
                + " or LogicalCopy.cleanUp removes what the copy created", e);
    }
}
