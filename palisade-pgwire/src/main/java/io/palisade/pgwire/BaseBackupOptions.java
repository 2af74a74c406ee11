package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import java.util.OptionalInt;

/**
 * Options of a BASE_BACKUP (PostgreSQL 15+ syntax).
 *
 * @param label the backup label (in {@code backup_label} and the server's log)
 * @param checkpoint {@code FAST} checkpoints at once; {@code SPREAD} waits for a spread checkpoint (gentler, slower)
 * @param includeWal whether the tar includes the WAL needed to make the backup consistent ({@code pg_wal/})
 * @param manifest whether to send a backup manifest (JSON, with a checksum per file)
 * @param maxRateKbPerSecond the server's transfer rate limit in kB/s (32 to 1048576), or none
 * @param progress whether the server computes sizes first (slower start) so progress can be shown against a total
 */
public record BaseBackupOptions(
        String label,
        Checkpoint checkpoint,
        boolean includeWal,
        boolean manifest,
        OptionalInt maxRateKbPerSecond,
        boolean progress) {
    public static final int MIN_RATE_KB = 32;
    public static final int MAX_RATE_KB = 1_048_576;

    public enum Checkpoint {
        FAST,
        SPREAD
    }

    public BaseBackupOptions {
        requireNonNull(label, "label is null");
        requireNonNull(checkpoint, "checkpoint is null");
        requireNonNull(maxRateKbPerSecond, "maxRateKbPerSecond is null");
        if (label.indexOf('\0') >= 0 || label.length() > 1024) {
            throw new IllegalArgumentException("backup label must be at most 1024 characters without NUL");
        }
        maxRateKbPerSecond.ifPresent(rate -> {
            if (rate < MIN_RATE_KB || rate > MAX_RATE_KB) {
                throw new IllegalArgumentException("MAX_RATE must be from " + MIN_RATE_KB + " to " + MAX_RATE_KB
                        + " kB/s: " + rate);
            }
        });
    }

    /** Fast checkpoint, no WAL, a manifest, no rate limit, no progress totals. */
    public static BaseBackupOptions of(String label) {
        return new BaseBackupOptions(label, Checkpoint.FAST, false, true, OptionalInt.empty(), false);
    }

    public BaseBackupOptions withCheckpoint(Checkpoint value) {
        return new BaseBackupOptions(label, value, includeWal, manifest, maxRateKbPerSecond, progress);
    }

    public BaseBackupOptions withWal(boolean value) {
        return new BaseBackupOptions(label, checkpoint, value, manifest, maxRateKbPerSecond, progress);
    }

    public BaseBackupOptions withManifest(boolean value) {
        return new BaseBackupOptions(label, checkpoint, includeWal, value, maxRateKbPerSecond, progress);
    }

    public BaseBackupOptions withMaxRate(int kbPerSecond) {
        return new BaseBackupOptions(label, checkpoint, includeWal, manifest, OptionalInt.of(kbPerSecond), progress);
    }

    public BaseBackupOptions withProgress(boolean value) {
        return new BaseBackupOptions(label, checkpoint, includeWal, manifest, maxRateKbPerSecond, value);
    }

    /** The replication command. */
    String command() {
        StringBuilder sql = new StringBuilder("BASE_BACKUP (LABEL ").append(Sql.quoteLiteral(label))
                .append(", CHECKPOINT ").append(checkpoint == Checkpoint.FAST ? "'fast'" : "'spread'")
                .append(", WAL ").append(includeWal)
                .append(", MANIFEST ").append(manifest ? "'yes'" : "'no'")
                .append(", PROGRESS ").append(progress);
        maxRateKbPerSecond.ifPresent(rate -> sql.append(", MAX_RATE ").append(rate));
        return sql.append(')').toString();
    }
}
