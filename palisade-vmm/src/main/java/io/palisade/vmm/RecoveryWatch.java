package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.spi.PalisadeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * Watches a guest that replays WAL before it accepts connections (with {@code hot_standby = off} nothing can be asked
 * over SQL until recovery ends): samples the data disk's I/O counters over QMP ({@code query-blockstats}) to report
 * progress and to tell a long recovery (the counters move) from a stuck one (they do not). Not thread-safe: one boot
 * watcher uses it.
 */
final class RecoveryWatch {
    static final Duration SAMPLE_INTERVAL = Duration.ofSeconds(5);
    private static final Duration QMP_TIMEOUT = Duration.ofSeconds(3);
    private static final long MIB = 1024L * 1024;

    private final Path qmpSocket;
    private final Duration stallBound;
    private long nextSampleNanos;
    private long lastBytes = -1;
    private long lastChangeNanos;
    private long readBytes;
    private long writtenBytes;

    RecoveryWatch(Path qmpSocket, Duration stallBound, long startNanos) {
        this.qmpSocket = requireNonNull(qmpSocket, "qmpSocket is null");
        this.stallBound = requireNonNull(stallBound, "stallBound is null");
        this.nextSampleNanos = startNanos;
        this.lastChangeNanos = startNanos;
    }

    /**
     * Samples the counters if {@link #SAMPLE_INTERVAL} has passed; returns true when a sample was taken. A QMP error
     * (QEMU busy or gone) skips the sample: the caller notices a dead QEMU itself.
     */
    boolean poll(long nowNanos) {
        if (nowNanos < nextSampleNanos) {
            return false;
        }
        nextSampleNanos = nowNanos + SAMPLE_INTERVAL.toNanos();
        try (Qmp qmp = Qmp.connect(qmpSocket, QMP_TIMEOUT)) {
            JsonNode stats = qmp.execute("query-blockstats", Map.of(), QMP_TIMEOUT);
            long read = 0;
            long written = 0;
            for (JsonNode device : stats) {
                // the data volume is the throttle node "data" (see QemuCommand); the read-only rootfs does not count
                if ("data".equals(device.path("node-name").asText())) {
                    read += device.path("stats").path("rd_bytes").asLong();
                    written += device.path("stats").path("wr_bytes").asLong();
                }
            }
            readBytes = read;
            writtenBytes = written;
            if (read + written != lastBytes) {
                lastBytes = read + written;
                lastChangeNanos = nowNanos;
            }
            return true;
        } catch (PalisadeException e) {
            return false;
        }
    }

    /** Whether the data disk saw no I/O for longer than the stall bound. */
    boolean stalled(long nowNanos) {
        return nowNanos - lastChangeNanos > stallBound.toNanos();
    }

    Duration stallBound() {
        return stallBound;
    }

    /** For progress lines and error messages: what the guest did to its data disk so far. */
    String describe() {
        return String.format(java.util.Locale.ROOT, "%.1f MiB read, %.1f MiB written on the data volume",
                readBytes / (double) MIB, writtenBytes / (double) MIB);
    }

    long readBytes() {
        return readBytes;
    }

    long writtenBytes() {
        return writtenBytes;
    }
}
