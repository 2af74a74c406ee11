package io.palisade.store;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.Rung;
import io.palisade.spi.ServerLogin;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.StatementContext;

/**
 * Moves between rungs in the metadata store. The one write that matters is {@link #switchDatabase}: the database record
 * takes the target's rung, plan, endpoint and login, and the move becomes {@link MovePhase#SWITCHED}, in one
 * transaction, so that after a crash the record and the move agree on where the tenant lives. Thread-safe (every call
 * is its own transaction).
 */
public final class MoveCatalog {
    private final Jdbi jdbi;

    MoveCatalog(Jdbi jdbi) {
        this.jdbi = requireNonNull(jdbi, "jdbi is null");
    }

    /** Records a new move; CONFLICT when the database already has an unfinished one. */
    public void insert(MoveRecord move) {
        try {
            jdbi.useHandle(h -> h.createUpdate("""
                            INSERT INTO moves (id, database_id, account_id, from_isolation, to_isolation, from_plan,
                                to_plan, phase, detail)
                            VALUES (:id, :db, :account, :from, :to, CAST(:fromPlan AS jsonb), CAST(:toPlan AS jsonb),
                                :phase, :detail)""")
                    .bind("id", move.id())
                    .bind("db", move.databaseId())
                    .bind("account", move.accountId())
                    .bind("from", move.from().wireName())
                    .bind("to", move.to().wireName())
                    .bind("fromPlan", planJson(move.fromPlan()))
                    .bind("toPlan", planJson(move.toPlan()))
                    .bind("phase", move.phase().wireName())
                    .bind("detail", move.detail().orElse(null))
                    .execute());
        } catch (org.jdbi.v3.core.statement.UnableToExecuteStatementException e) {
            if (e.getCause() instanceof SQLException sql && "23505".equals(sql.getSQLState())) {
                throw new PalisadeException(ErrorCode.CONFLICT, "database " + move.databaseId()
                        + " is already being moved; wait for that move to end or cancel it");
            }
            throw e;
        }
    }

    public Optional<MoveRecord> find(String moveId) {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM moves WHERE id = :id")
                .bind("id", moveId).map(MoveCatalog::map).findOne());
    }

    /** The database's most recent move, finished or not. */
    public Optional<MoveRecord> latest(String databaseId) {
        return jdbi.withHandle(h -> h.createQuery(
                        "SELECT * FROM moves WHERE database_id = :db ORDER BY started_at DESC, id LIMIT 1")
                .bind("db", databaseId).map(MoveCatalog::map).findOne());
    }

    /** Every move not yet finished, oldest first (what a restart of palisade must settle). */
    public List<MoveRecord> unfinished() {
        return jdbi.withHandle(h -> h.createQuery(
                        "SELECT * FROM moves WHERE finished_at IS NULL ORDER BY started_at")
                .map(MoveCatalog::map).list());
    }

    public void progress(String moveId, long copiedBytes, long totalBytes, long lagBytes) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE moves SET copied_bytes = :copied, total_bytes = :total, lag_bytes = :lag,
                            updated_at = now() WHERE id = :id AND finished_at IS NULL""")
                .bind("copied", copiedBytes)
                .bind("total", totalBytes)
                .bind("lag", lagBytes)
                .bind("id", moveId)
                .execute());
    }

    /** A phase before {@link MovePhase#SWITCHED}, with what it does. */
    public void phase(String moveId, MovePhase phase, String detail) {
        if (phase.switched() || phase.finished()) {
            throw new IllegalArgumentException("use switchDatabase or finish for " + phase);
        }
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE moves SET phase = :phase, detail = :detail, updated_at = now()
                        WHERE id = :id AND finished_at IS NULL""")
                .bind("phase", phase.wireName())
                .bind("detail", detail)
                .bind("id", moveId)
                .execute());
    }

    /**
     * The commit point of a move: the database record names the target (rung, plan, endpoint, login) and the move is
     * {@link MovePhase#SWITCHED}, in one transaction.
     */
    public void switchDatabase(String moveId, String databaseId, Rung to, Plan plan, Endpoint endpoint,
            Optional<ServerLogin> login, long cutoverMillis) {
        jdbi.useTransaction(h -> {
            int updated = h.createUpdate("""
                            UPDATE databases SET isolation = :isolation, plan_name = :planName, cpu = :cpu,
                                memory_mb = :memoryMb, disk_mb = :diskMb, iops = :iops, bandwidth_mbps = :bandwidth,
                                endpoint_host = :host, endpoint_port = :port, server_user = :user,
                                server_database = :db, updated_at = now()
                            WHERE id = :id""")
                    .bind("isolation", to.wireName())
                    .bind("planName", plan.name())
                    .bind("cpu", plan.cpu())
                    .bind("memoryMb", plan.memoryMb())
                    .bind("diskMb", plan.diskMb())
                    .bind("iops", plan.iops())
                    .bind("bandwidth", plan.bandwidthMbps())
                    .bind("host", endpoint.host())
                    .bind("port", endpoint.port())
                    .bind("user", login.map(ServerLogin::user).orElse(null))
                    .bind("db", login.map(ServerLogin::database).orElse(null))
                    .bind("id", databaseId)
                    .execute();
            if (updated != 1) {
                throw new PalisadeException(ErrorCode.NOT_FOUND, "database " + databaseId + " is gone");
            }
            h.createUpdate("""
                            UPDATE moves SET phase = 'switched', detail = :detail, cutover_ms = :cutover,
                                lag_bytes = 0, updated_at = now() WHERE id = :id""")
                    .bind("detail", "removing the source instance")
                    .bind("cutover", cutoverMillis)
                    .bind("id", moveId)
                    .execute();
        });
    }

    /** Ends a move: {@link MovePhase#DONE}, {@link MovePhase#CANCELLED} or {@link MovePhase#FAILED}. */
    public void finish(String moveId, MovePhase phase, String detail) {
        if (!phase.finished()) {
            throw new IllegalArgumentException(phase + " does not end a move");
        }
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE moves SET phase = :phase, detail = :detail, updated_at = now(), finished_at = now()
                        WHERE id = :id AND finished_at IS NULL""")
                .bind("phase", phase.wireName())
                .bind("detail", detail)
                .bind("id", moveId)
                .execute());
    }

    /** How many moves the store holds in each phase (kept history included), for metrics. */
    public Map<MovePhase, Long> countByPhase() {
        Map<MovePhase, Long> counts = new java.util.EnumMap<>(MovePhase.class);
        for (MovePhase phase : MovePhase.values()) {
            counts.put(phase, 0L);
        }
        jdbi.useHandle(h -> h.createQuery("SELECT phase, count(*) AS n FROM moves GROUP BY phase")
                .map((rs, ctx) -> Map.entry(MovePhase.fromWire(rs.getString("phase")), rs.getLong("n")))
                .forEach(e -> counts.put(e.getKey(), e.getValue())));
        return counts;
    }

    private static String planJson(Plan plan) {
        Map<String, String> fields = new LinkedHashMap<>();
        fields.put("name", plan.name());
        fields.put("cpu", Integer.toString(plan.cpu()));
        fields.put("memory_mb", Integer.toString(plan.memoryMb()));
        fields.put("disk_mb", Integer.toString(plan.diskMb()));
        fields.put("iops", Integer.toString(plan.iops()));
        fields.put("bandwidth_mbps", Integer.toString(plan.bandwidthMbps()));
        return MetadataStore.Json.write(fields);
    }

    private static Plan plan(String json) {
        Map<String, String> f = MetadataStore.Json.readLabels(json);
        return new Plan(f.get("name"), Integer.parseInt(f.get("cpu")), Integer.parseInt(f.get("memory_mb")),
                Integer.parseInt(f.get("disk_mb")), Integer.parseInt(f.get("iops")),
                Integer.parseInt(f.get("bandwidth_mbps")));
    }

    private static MoveRecord map(ResultSet rs, StatementContext ctx) throws SQLException {
        long cutover = rs.getLong("cutover_ms");
        Optional<Long> cutoverMillis = rs.wasNull() ? Optional.empty() : Optional.of(cutover);
        Timestamp finished = rs.getTimestamp("finished_at");
        return new MoveRecord(
                rs.getString("id"),
                rs.getString("database_id"),
                rs.getString("account_id"),
                Rung.fromWire(rs.getString("from_isolation")),
                Rung.fromWire(rs.getString("to_isolation")),
                plan(rs.getString("from_plan")),
                plan(rs.getString("to_plan")),
                MovePhase.fromWire(rs.getString("phase")),
                Optional.ofNullable(rs.getString("detail")),
                rs.getLong("copied_bytes"),
                rs.getLong("total_bytes"),
                rs.getLong("lag_bytes"),
                cutoverMillis,
                rs.getTimestamp("started_at").toInstant(),
                rs.getTimestamp("updated_at").toInstant(),
                Optional.ofNullable(finished).map(Timestamp::toInstant));
    }
}
