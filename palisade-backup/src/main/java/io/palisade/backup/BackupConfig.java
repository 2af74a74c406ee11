package io.palisade.backup;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Server-wide backup settings. {@code baseBackupInterval} and {@code retention} are defaults a database may override;
 * {@code maxRateKbps} caps how fast a base backup reads (0 = unlimited) so it does not stall neighbours;
 * {@code flushInterval} bounds how long streamed WAL waits before it is written to the archive (async durability);
 * {@code startDelay} is how long after a database starts or wakes its async durability setting is written, a due base
 * backup starts and (for an archive that already holds WAL) its async archiver connects, so that its first client is
 * served first (a fresh server connection costs a TCG guest most of a second of its CPU; the archive's slot keeps the
 * WAL of the meantime; a new archive's archiver connects at once to create that slot).
 */
public record BackupConfig(
        boolean enabled,
        Duration baseBackupInterval,
        Duration retention,
        int maxRateKbps,
        Duration flushInterval,
        Duration startDelay,
        Path stagingDir) {
    public BackupConfig {
        requireNonNull(baseBackupInterval, "baseBackupInterval is null");
        requireNonNull(retention, "retention is null");
        requireNonNull(flushInterval, "flushInterval is null");
        requireNonNull(startDelay, "startDelay is null");
        requireNonNull(stagingDir, "stagingDir is null");
        if (startDelay.isNegative()) {
            throw new IllegalArgumentException("backup.start-delay must not be negative");
        }
        if (baseBackupInterval.toSeconds() < 1) {
            throw new IllegalArgumentException("backup.base-interval must be at least 1s");
        }
        if (retention.toSeconds() < 1) {
            throw new IllegalArgumentException("backup.retention must be at least 1s");
        }
        if (maxRateKbps != 0 && (maxRateKbps < 32 || maxRateKbps > 1_048_576)) {
            throw new IllegalArgumentException("backup.max-rate must be 0 (unlimited) or between 32 kB/s and 1 GB/s");
        }
    }
}
