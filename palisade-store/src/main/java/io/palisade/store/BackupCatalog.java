package io.palisade.store;

import static java.util.Objects.requireNonNull;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.jdbi.v3.core.Jdbi;

/**
 * The backup catalog in the metadata store: archives (WAL lineages), base backups and operations (restore, fork,
 * on-demand backup), plus the per-database backup settings. The archive itself (object store) is the truth for bytes;
 * this is the truth for what is complete and usable. Thread-safe (every call is its own transaction).
 */
public final class BackupCatalog {
    private final Jdbi jdbi;

    BackupCatalog(Jdbi jdbi) {
        this.jdbi = requireNonNull(jdbi, "jdbi is null");
    }

    // per-database settings

    public BackupSettings settings(String databaseId) {
        return jdbi.withHandle(h -> h.createQuery("""
                        SELECT durability, retention_seconds, base_backup_interval_seconds, archive_id
                        FROM databases WHERE id = :id""")
                .bind("id", databaseId)
                .map((rs, ctx) -> new BackupSettings(
                        Durability.fromWire(rs.getString("durability")),
                        nullableInt(rs, "retention_seconds"),
                        nullableInt(rs, "base_backup_interval_seconds"),
                        rs.getString("archive_id")))
                .findOne()
                .orElseThrow(() -> new IllegalStateException("no database " + databaseId)));
    }

    public void setSettings(String databaseId, Durability durability, Integer retentionSeconds, Integer intervalSeconds) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE databases SET durability = :durability, retention_seconds = :retention,
                            base_backup_interval_seconds = :interval, updated_at = now() WHERE id = :id""")
                .bind("durability", durability.wireName())
                .bind("retention", retentionSeconds)
                .bind("interval", intervalSeconds)
                .bind("id", databaseId)
                .execute());
    }

    /** Points the database at its current archive (or none). */
    public void setArchive(String databaseId, String archiveId) {
        jdbi.useHandle(h -> h.createUpdate("UPDATE databases SET archive_id = :archive WHERE id = :id")
                .bind("archive", archiveId)
                .bind("id", databaseId)
                .execute());
    }

    // where data has been

    /** Whether the database's data ever ran inside a vm guest (directly, or through the source of a restore or fork). */
    public boolean dataFromVm(String databaseId) {
        return jdbi.withHandle(h -> h.createQuery("SELECT data_from_vm FROM databases WHERE id = :id")
                .bind("id", databaseId)
                .mapTo(Boolean.class)
                .findOne()
                .orElse(false));
    }

    public void markDataFromVm(String databaseId) {
        jdbi.useHandle(h -> h.createUpdate("UPDATE databases SET data_from_vm = true WHERE id = :id")
                .bind("id", databaseId)
                .execute());
    }

    /** Whether an archive holds data that ran inside a vm guest. */
    public boolean archiveDataFromVm(String archiveId) {
        return jdbi.withHandle(h -> h.createQuery("SELECT data_from_vm FROM archives WHERE id = :id")
                .bind("id", archiveId)
                .mapTo(Boolean.class)
                .findOne()
                .orElse(false));
    }

    // archives

    public void insertArchive(ArchiveRecord archive) {
        jdbi.useHandle(h -> h.createUpdate("""
                        INSERT INTO archives (id, database_id, account_id, data_key_enc, slot_name, created_at,
                            data_from_vm)
                        VALUES (:id, :databaseId, :accountId, :dataKeyEnc, :slotName, :createdAt,
                            COALESCE((SELECT data_from_vm FROM databases WHERE id = :databaseId), false))""")
                .bindMethods(archive)
                .bind("createdAt", Timestamp.from(archive.createdAt()))
                .execute());
    }

    public Optional<ArchiveRecord> findArchive(String id) {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM archives WHERE id = :id")
                .bind("id", id)
                .map((rs, ctx) -> archive(rs))
                .findOne());
    }

    /** Every archive, oldest first. */
    public List<ArchiveRecord> archives() {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM archives ORDER BY created_at")
                .map((rs, ctx) -> archive(rs))
                .list());
    }

    /** The archives a database owns (its current one and, after in-place restores, none of the old ones). */
    public List<ArchiveRecord> archivesOf(String databaseId) {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM archives WHERE database_id = :id ORDER BY created_at")
                .bind("id", databaseId)
                .map((rs, ctx) -> archive(rs))
                .list());
    }

    /** Hands an archive to another database (in-place restore: the pre-restore copy takes the old lineage). */
    public void assignArchive(String archiveId, String databaseId) {
        jdbi.useHandle(h -> h.createUpdate("UPDATE archives SET database_id = :db WHERE id = :id")
                .bind("db", databaseId)
                .bind("id", archiveId)
                .execute());
    }

    /**
     * The database is gone; its archive is kept until {@code keepUntil} (still under the deleted database's id, so it
     * can be restored from), then pruned.
     */
    public void orphanArchive(String archiveId, Instant keepUntil) {
        jdbi.useHandle(h -> h.createUpdate("UPDATE archives SET keep_until = :until WHERE id = :id")
                .bind("until", Timestamp.from(keepUntil))
                .bind("id", archiveId)
                .execute());
    }

    /** The newest archive kept after the deletion of an account's database, if any. */
    public Optional<ArchiveRecord> keptArchive(String accountId, String databaseId) {
        return jdbi.withHandle(h -> h.createQuery("""
                        SELECT * FROM archives WHERE account_id = :account AND database_id = :id
                            AND keep_until IS NOT NULL AND keep_until > now()
                        ORDER BY created_at DESC LIMIT 1""")
                .bind("account", accountId)
                .bind("id", databaseId)
                .map((rs, ctx) -> archive(rs))
                .findOne());
    }

    public void deleteArchive(String archiveId) {
        jdbi.useHandle(h -> h.createUpdate("DELETE FROM archives WHERE id = :id").bind("id", archiveId).execute());
    }

    /** Records streaming progress: everything up to {@code archivedLsn} is durable in the archive. */
    public void archiveProgress(String archiveId, String systemId, int timeline, long archivedLsn, Instant caughtUpAt) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE archives SET system_id = :system, timeline = :timeline, archived_lsn = :lsn,
                            caught_up_at = COALESCE(:caughtUp, caught_up_at), last_error = NULL
                        WHERE id = :id""")
                .bind("system", systemId)
                .bind("timeline", timeline)
                .bind("lsn", archivedLsn)
                .bind("caughtUp", caughtUpAt == null ? null : Timestamp.from(caughtUpAt))
                .bind("id", archiveId)
                .execute());
    }

    public void archiveError(String archiveId, String error, Instant at) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE archives SET last_error = :error, last_error_at = :at, failures = failures + 1
                        WHERE id = :id""")
                .bind("error", error)
                .bind("at", Timestamp.from(at))
                .bind("id", archiveId)
                .execute());
    }

    // base backups

    public void insertBaseBackup(BaseBackupRecord backup) {
        jdbi.useHandle(h -> h.createUpdate("""
                        INSERT INTO base_backups (id, archive_id, state, trigger, started_at)
                        VALUES (:id, :archiveId, :state, :trigger, :startedAt)""")
                .bind("id", backup.id())
                .bind("archiveId", backup.archiveId())
                .bind("state", backup.state().wireName())
                .bind("trigger", backup.trigger())
                .bind("startedAt", Timestamp.from(backup.startedAt()))
                .execute());
    }

    public void completeBaseBackup(String id, long startLsn, long endLsn, int timeline, long bytes, int parts, Instant at) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE base_backups SET state = 'complete', start_lsn = :start, end_lsn = :end, timeline = :tli,
                            bytes = :bytes, parts = :parts, finished_at = :at WHERE id = :id""")
                .bind("start", startLsn)
                .bind("end", endLsn)
                .bind("tli", timeline)
                .bind("bytes", bytes)
                .bind("parts", parts)
                .bind("at", Timestamp.from(at))
                .bind("id", id)
                .execute());
    }

    public void failBaseBackup(String id, String error, Instant at) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE base_backups SET state = 'failed', error = :error, finished_at = :at WHERE id = :id""")
                .bind("error", error)
                .bind("at", Timestamp.from(at))
                .bind("id", id)
                .execute());
    }

    /** Base backups of an archive, oldest first. */
    public List<BaseBackupRecord> baseBackups(String archiveId) {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM base_backups WHERE archive_id = :id ORDER BY started_at")
                .bind("id", archiveId)
                .map((rs, ctx) -> baseBackup(rs))
                .list());
    }

    public List<BaseBackupRecord> baseBackupsInState(BaseBackupState state) {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM base_backups WHERE state = :state ORDER BY started_at")
                .bind("state", state.wireName())
                .map((rs, ctx) -> baseBackup(rs))
                .list());
    }

    public void deleteBaseBackup(String id) {
        jdbi.useHandle(h -> h.createUpdate("DELETE FROM base_backups WHERE id = :id").bind("id", id).execute());
    }

    // operations

    public void insertOperation(OperationRecord op) {
        jdbi.useHandle(h -> h.createUpdate("""
                        INSERT INTO operations (id, kind, account_id, database_id, source_id, target, state, phase,
                            result_id, started_at)
                        VALUES (:id, :kind, :accountId, :databaseId, :sourceId, :target, :state, :phase, :resultId, :at)""")
                .bind("id", op.id())
                .bind("kind", op.kind().wireName())
                .bind("accountId", op.accountId())
                .bind("databaseId", op.databaseId())
                .bind("sourceId", op.sourceId())
                .bind("target", op.target())
                .bind("state", op.state().wireName())
                .bind("phase", op.phase())
                .bind("resultId", op.resultId())
                .bind("at", Timestamp.from(op.startedAt()))
                .execute());
    }

    public void operationProgress(String id, String phase, long bytes, long walBytes) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE operations SET phase = :phase, bytes = :bytes, wal_bytes = :wal WHERE id = :id""")
                .bind("phase", phase)
                .bind("bytes", bytes)
                .bind("wal", walBytes)
                .bind("id", id)
                .execute());
    }

    public void finishOperation(String id, OperationState state, String resultId, String error, Instant at) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE operations SET state = :state, result_id = COALESCE(:result, result_id), error = :error,
                            finished_at = :at WHERE id = :id""")
                .bind("state", state.wireName())
                .bind("result", resultId)
                .bind("error", error)
                .bind("at", Timestamp.from(at))
                .bind("id", id)
                .execute());
    }

    public Optional<OperationRecord> findOperation(String id) {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM operations WHERE id = :id")
                .bind("id", id)
                .map((rs, ctx) -> operation(rs))
                .findOne());
    }

    /** Operations that changed or made a database, or used it as their source; newest first. */
    public List<OperationRecord> operationsOf(String databaseId) {
        return jdbi.withHandle(h -> h.createQuery("""
                        SELECT * FROM operations WHERE database_id = :id OR source_id = :id
                        ORDER BY started_at DESC LIMIT 100""")
                .bind("id", databaseId)
                .map((rs, ctx) -> operation(rs))
                .list());
    }

    /** Unfinished operations that make or change this database (no limit: none may be missed after a crash). */
    public List<OperationRecord> runningOperationsFor(String databaseId) {
        return jdbi.withHandle(h -> h.createQuery("""
                        SELECT * FROM operations WHERE database_id = :id AND state = 'running' ORDER BY started_at""")
                .bind("id", databaseId)
                .map((rs, ctx) -> operation(rs))
                .list());
    }

    public List<OperationRecord> operationsInState(OperationState state) {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM operations WHERE state = :state ORDER BY started_at")
                .bind("state", state.wireName())
                .map((rs, ctx) -> operation(rs))
                .list());
    }

    // mapping

    private static ArchiveRecord archive(ResultSet rs) throws SQLException {
        return new ArchiveRecord(
                rs.getString("id"),
                rs.getString("database_id"),
                rs.getString("account_id"),
                rs.getString("data_key_enc"),
                rs.getString("slot_name"),
                rs.getString("system_id"),
                nullableInt(rs, "timeline"),
                nullableLong(rs, "archived_lsn"),
                instant(rs, "caught_up_at"),
                rs.getString("last_error"),
                instant(rs, "last_error_at"),
                rs.getLong("failures"),
                instant(rs, "keep_until"),
                instant(rs, "created_at"));
    }

    private static BaseBackupRecord baseBackup(ResultSet rs) throws SQLException {
        return new BaseBackupRecord(
                rs.getString("id"),
                rs.getString("archive_id"),
                BaseBackupState.fromWire(rs.getString("state")),
                rs.getString("trigger"),
                instant(rs, "started_at"),
                instant(rs, "finished_at"),
                nullableLong(rs, "start_lsn"),
                nullableLong(rs, "end_lsn"),
                nullableInt(rs, "timeline"),
                rs.getLong("bytes"),
                rs.getInt("parts"),
                rs.getString("error"));
    }

    private static OperationRecord operation(ResultSet rs) throws SQLException {
        return new OperationRecord(
                rs.getString("id"),
                OperationKind.fromWire(rs.getString("kind")),
                rs.getString("account_id"),
                rs.getString("database_id"),
                rs.getString("source_id"),
                rs.getString("target"),
                OperationState.fromWire(rs.getString("state")),
                rs.getString("phase"),
                rs.getLong("bytes"),
                rs.getLong("wal_bytes"),
                rs.getString("result_id"),
                rs.getString("error"),
                instant(rs, "started_at"),
                instant(rs, "finished_at"));
    }

    private static Integer nullableInt(ResultSet rs, String column) throws SQLException {
        int value = rs.getInt(column);
        return rs.wasNull() ? null : value;
    }

    private static Long nullableLong(ResultSet rs, String column) throws SQLException {
        long value = rs.getLong(column);
        return rs.wasNull() ? null : value;
    }

    private static Instant instant(ResultSet rs, String column) throws SQLException {
        Timestamp timestamp = rs.getTimestamp(column);
        return timestamp == null ? null : timestamp.toInstant();
    }
}
