package io.palisade.bench.vm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The host's CPU use between two readings of {@code /proc/stat}, in percent of one core (so 200 % is both cores of a
 * 2-core host busy). Immutable.
 */
public record HostCpu(long busyTicks, long totalTicks) {
    public static HostCpu read() {
        try {
            String[] fields = Files.readAllLines(Path.of("/proc/stat")).getFirst().trim().split("\\s+");
            long total = 0;
            for (int i = 1; i < fields.length && i <= 8; i++) {
                total += Long.parseLong(fields[i]);
            }
            long idle = Long.parseLong(fields[4]) + Long.parseLong(fields[5]); // idle + iowait
            return new HostCpu(total - idle, total);
        } catch (IOException | RuntimeException e) {
            return new HostCpu(-1, -1);
        }
    }

    /** Busy percent of one core since {@code earlier}, or -1 if unknown. */
    public double busyPercentSince(HostCpu earlier) {
        if (busyTicks < 0 || earlier.busyTicks < 0 || totalTicks <= earlier.totalTicks) {
            return -1;
        }
        return 100.0 * Runtime.getRuntime().availableProcessors() * (busyTicks - earlier.busyTicks)
                / (totalTicks - earlier.totalTicks);
    }
}
