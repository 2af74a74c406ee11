package io.palisade.server;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.palisade.api.DatabaseService;
import io.palisade.backup.BackupService;
import io.palisade.backup.store.ArchiveStore;
import io.palisade.backup.store.LocalArchiveStore;
import io.palisade.backup.store.S3ArchiveStore;
import io.palisade.store.MetadataStore;
import io.palisade.store.SecretBox;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Wires per-database backups into the server: the archive store from configuration, the service, its metrics (archive
 * lag in bytes and seconds, last base backup age, failures, per database) and its part of {@code /v1/health}. Stateless.
 */
final class Backups {
    private static final Logger log = LoggerFactory.getLogger(Backups.class);

    private Backups() {}

    static BackupService open(ServerConfig config, MetadataStore store, SecretBox secrets, DatabaseService service,
            MeterRegistry metrics, Map<String, Object> healthExtras, List<AutoCloseable> closeables) {
        ArchiveStore archive = config.backupStorage().equals("s3")
                ? new S3ArchiveStore(config.backupS3())
                : new LocalArchiveStore(config.backupLocalDir());
        closeables.add(archive);
        BackupService backups = new BackupService(config.backupConfig(), store.backupCatalog(), archive, secrets,
                service::adminAccess);
        closeables.add(backups);
        log.info("backups: continuous WAL archiving to {}; base backups every {}, retention {}", archive.describe(),
                config.backupConfig().baseBackupInterval(), config.backupConfig().retention());
        registerMetrics(backups, metrics, closeables);
        healthExtras.put("backups", new java.util.AbstractMap<String, Object>() {
            @Override
            public java.util.Set<Entry<String, Object>> entrySet() {
                return health(backups).entrySet();
            }
        });
        return backups;
    }

    /**
     * Counts only: health needs no key, so it names no database and no storage location (each owner sees its own
     * database's archive status in GET /v1/databases/{id}/backups; operators see the ids in the log and /metrics).
     */
    private static Map<String, Object> health(BackupService backups) {
        Map<String, Object> out = new LinkedHashMap<>();
        List<BackupService.ArchiveStatus> statuses = backups.statuses();
        long broken = statuses.stream().filter(s -> !s.healthy()).count();
        out.put("storage", backups.storeKind());
        out.put("archiving", statuses.size());
        out.put("status", broken == 0 ? "ok" : "degraded");
        out.put("unhealthy", broken);
        return out;
    }

    private static void registerMetrics(BackupService backups, MeterRegistry metrics, List<AutoCloseable> closeables) {
        MultiGauge lagBytes = MultiGauge.builder("palisade_archive_lag_bytes")
                .description("WAL the server has written that the archive does not hold yet").register(metrics);
        MultiGauge lagSeconds = MultiGauge.builder("palisade_archive_lag_seconds")
                .description("Seconds since the archive last held all written WAL (0 when caught up)").register(metrics);
        MultiGauge backupAge = MultiGauge.builder("palisade_base_backup_age_seconds")
                .description("Age of the last successful base backup").register(metrics);
        MultiGauge failures = MultiGauge.builder("palisade_archive_failures")
                .description("Archiving failures since start (reconnects, store errors)").register(metrics);
        Gauge.builder("palisade_archive_unhealthy", backups, b -> b.statuses().stream().filter(s -> !s.healthy()).count())
                .description("Databases whose archiving is broken or more than a minute behind").register(metrics);
        ScheduledExecutorService refresher = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("palisade-backup-metrics").daemon().factory());
        refresher.scheduleWithFixedDelay(() -> {
            try {
                List<BackupService.ArchiveStatus> statuses = backups.statuses();
                lagBytes.register(statuses.stream().map(s -> MultiGauge.Row.of(Tags.of("database", s.databaseId()),
                        s.lagBytes())).toList(), true);
                lagSeconds.register(statuses.stream().map(s -> MultiGauge.Row.of(Tags.of("database", s.databaseId()),
                        Double.isNaN(s.lagSeconds()) ? -1 : s.lagSeconds())).toList(), true);
                backupAge.register(statuses.stream().filter(s -> s.lastBaseBackupAt().isPresent())
                        .map(s -> MultiGauge.Row.of(Tags.of("database", s.databaseId()),
                                Duration.between(s.lastBaseBackupAt().get(), Instant.now()).toSeconds()))
                        .toList(), true);
                failures.register(statuses.stream().map(s -> MultiGauge.Row.of(Tags.of("database", s.databaseId()),
                        s.failures())).toList(), true);
            } catch (RuntimeException e) {
                log.debug("backup metrics refresh failed: {}", e.getMessage());
            }
        }, 1, 5, TimeUnit.SECONDS);
        closeables.add(refresher::shutdownNow);
    }
}
