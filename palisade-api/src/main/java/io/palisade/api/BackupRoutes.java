package io.palisade.api;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.palisade.backup.BackupService;
import io.palisade.backup.RestoreTarget;
import io.palisade.pgwire.Lsn;
import io.palisade.spi.PalisadeException;
import io.palisade.store.BaseBackupRecord;
import io.palisade.store.Durability;
import io.palisade.store.OperationRecord;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Backup routes: list backups and the restorable window, take one now, restore in place, fork, settings, operations.
 * Stateless; everything lives in {@link RestoreService} and {@link BackupService}.
 */
final class BackupRoutes {
    private final Supplier<RestoreService> restores;
    private final ConnectionInfo connections;

    BackupRoutes(Supplier<RestoreService> restores, ConnectionInfo connections) {
        this.restores = requireNonNull(restores, "restores is null");
        this.connections = requireNonNull(connections, "connections is null");
    }

    /** Body of restore and fork requests. */
    record TargetBody(
            @JsonProperty("target_time") String targetTime,
            @JsonProperty("target_lsn") String targetLsn,
            @JsonProperty("latest") Boolean latest) {}

    /** Body of a fork: where to fork from, plus optional create fields for the fork. */
    record ForkBody(
            @JsonProperty("target_time") String targetTime,
            @JsonProperty("target_lsn") String targetLsn,
            @JsonProperty("latest") Boolean latest,
            @JsonProperty("label") String label,
            @JsonProperty("isolation") String isolation,
            @JsonProperty("plan") String plan,
            @JsonProperty("persistent") Boolean persistent,
            @JsonProperty("ttl_seconds") Integer ttlSeconds,
            @JsonProperty("labels") Map<String, String> labels) {}

    /** Body of {@code PATCH /v1/databases/{id}/backup-settings}. */
    record SettingsBody(
            @JsonProperty("durability") String durability,
            @JsonProperty("retention_seconds") Integer retentionSeconds,
            @JsonProperty("base_backup_interval_seconds") Integer baseBackupIntervalSeconds) {}

    void register(Javalin app) {
        app.get("/v1/databases/{id}/backups", this::list);
        app.post("/v1/databases/{id}/backups", ctx -> {
            BaseBackupRecord backup = restores.get().backupNow(ApiServer.account(ctx), ctx.pathParam("id"));
            ctx.status(201).json(backup(backup));
        });
        app.post("/v1/databases/{id}/restore", this::restoreInPlace);
        app.post("/v1/databases/{id}/fork", this::fork);
        app.patch("/v1/databases/{id}/backup-settings", this::settings);
        app.get("/v1/databases/{id}/operations", ctx -> {
            String id = restores.get().databases().get(ApiServer.account(ctx), ctx.pathParam("id")).id();
            ctx.json(Map.of("operations", restores.get().operations(id).stream().map(BackupRoutes::operation).toList()));
        });
    }

    private void list(Context ctx) {
        RestoreService service = restores.get();
        var record = service.databases().get(ApiServer.account(ctx), ctx.pathParam("id"));
        String id = record.id();
        BackupService backups = service.backups();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", id);
        boolean available = service.databases().driver(record).supportsRestore();
        out.put("available", available);
        if (!available) {
            out.put("detail", "the " + record.isolation() + " rung has no backups, restore or fork yet; databases on "
                    + "the process and vm rungs have them");
        }
        BackupService.Window window = backups.window(id);
        out.put("window", Map.of("earliest", window.earliest().map(Object::toString).orElse(""),
                "latest", window.latest().map(Object::toString).orElse("")));
        backups.status(id).ifPresent(status -> out.put("archive", archive(status)));
        out.put("settings", service.settings(id));
        out.put("storage", backups.storeKind());
        out.put("backups", backups.backups(id).stream().map(BackupRoutes::backup).toList());
        ctx.json(out);
    }

    static Map<String, Object> archive(BackupService.ArchiveStatus status) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("archive_id", status.archiveId());
        out.put("streaming", status.streaming());
        out.put("healthy", status.healthy());
        out.put("archived_lsn", new Lsn(status.archivedLsn()).toString());
        out.put("lag_bytes", status.lagBytes());
        out.put("lag_seconds", Double.isNaN(status.lagSeconds()) ? null : status.lagSeconds());
        out.put("last_base_backup_at", status.lastBaseBackupAt().map(Object::toString).orElse(null));
        out.put("failures", status.failures());
        out.put("last_error", status.lastError().orElse(null));
        return out;
    }

    static Map<String, Object> backup(BaseBackupRecord backup) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", backup.id());
        out.put("state", backup.state().wireName());
        out.put("trigger", backup.trigger());
        out.put("started_at", backup.startedAt());
        out.put("finished_at", backup.finishedAt());
        out.put("start_lsn", backup.startLsn() == null ? null : new Lsn(backup.startLsn()).toString());
        out.put("end_lsn", backup.endLsn() == null ? null : new Lsn(backup.endLsn()).toString());
        out.put("timeline", backup.timeline());
        out.put("bytes", backup.bytes());
        out.put("parts", backup.parts());
        if (backup.error() != null) {
            out.put("error", backup.error());
        }
        return out;
    }

    static Map<String, Object> operation(OperationRecord op) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", op.id());
        out.put("kind", op.kind().wireName());
        out.put("database_id", op.databaseId());
        out.put("source_id", op.sourceId());
        out.put("target", op.target());
        out.put("state", op.state().wireName());
        out.put("phase", op.phase());
        out.put("bytes", op.bytes());
        out.put("wal_bytes", op.walBytes());
        if (op.resultId() != null) {
            out.put("result_id", op.resultId());
        }
        if (op.error() != null) {
            out.put("error", op.error());
        }
        out.put("started_at", op.startedAt());
        out.put("finished_at", op.finishedAt());
        return out;
    }

    private void restoreInPlace(Context ctx) {
        TargetBody body = Json.read(bodyOrEmpty(ctx), TargetBody.class);
        RestoreTarget target = new RestoreRequest(null, body.targetTime(), body.targetLsn(), body.latest()).target();
        RestoreService.InPlace result = restores.get().restoreInPlace(ApiServer.account(ctx), ctx.pathParam("id"), target);
        Map<String, Object> out = new LinkedHashMap<>(ApiServer.describe(result.database()));
        out.put("restore", operation(result.operation()));
        out.put("pre_restore_database", ApiServer.withSecrets(connections, result.preRestore()));
        ctx.status(result.database().state() == io.palisade.store.DatabaseState.RUNNING ? 200 : 500).json(out);
    }

    private void fork(Context ctx) {
        ForkBody body = Json.read(bodyOrEmpty(ctx), ForkBody.class);
        RestoreTarget target = new RestoreRequest(null, body.targetTime(), body.targetLsn(), body.latest()).target();
        CreateDatabaseRequest create = new CreateDatabaseRequest(body.label(), body.isolation(), body.plan(), null, null,
                null, body.persistent(), body.ttlSeconds(), body.labels(), null, null, null, null);
        ApiServer.created(ctx, connections, restores.get().fork(ApiServer.account(ctx), ctx.pathParam("id"), create,
                target));
    }

    private void settings(Context ctx) {
        SettingsBody body = Json.read(bodyOrEmpty(ctx), SettingsBody.class);
        if (body.retentionSeconds() != null && (body.retentionSeconds() < 60 || body.retentionSeconds() > 31_536_000)) {
            throw PalisadeException.invalid("retention_seconds must be between 60 and 31536000, got "
                    + body.retentionSeconds());
        }
        if (body.baseBackupIntervalSeconds() != null
                && (body.baseBackupIntervalSeconds() < 60 || body.baseBackupIntervalSeconds() > 31_536_000)) {
            throw PalisadeException.invalid("base_backup_interval_seconds must be between 60 and 31536000, got "
                    + body.baseBackupIntervalSeconds());
        }
        String id = ctx.pathParam("id");
        Durability durability = body.durability() == null ? null : Durability.fromWire(body.durability());
        ctx.json(restores.get().updateSettings(ApiServer.account(ctx), id, durability, body.retentionSeconds(),
                body.baseBackupIntervalSeconds()));
    }

    /** {@code ?keep_backups_days=N} on DELETE: keep the archive N days (1..3650); absent: delete it with the database. */
    static Optional<Duration> keepBackups(Context ctx) {
        String value = ctx.queryParam("keep_backups_days");
        if (value == null) {
            return Optional.empty();
        }
        try {
            int days = Integer.parseInt(value);
            if (days < 1 || days > 3650) {
                throw PalisadeException.invalid("keep_backups_days must be between 1 and 3650, got " + days);
            }
            return Optional.of(Duration.ofDays(days));
        } catch (NumberFormatException e) {
            throw PalisadeException.invalid("keep_backups_days must be a whole number of days, got '" + value + "'");
        }
    }

    private static byte[] bodyOrEmpty(Context ctx) {
        byte[] body = ctx.bodyAsBytes();
        return body.length == 0 ? "{}".getBytes() : body;
    }
}
