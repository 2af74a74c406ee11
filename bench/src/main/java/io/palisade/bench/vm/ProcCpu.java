package io.palisade.bench.vm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * CPU time (user + system, all threads) of a process and its live descendants from {@code /proc/<pid>/stat}, in
 * milliseconds. Assumes the usual 100 clock ticks per second. Stateless.
 */
public final class ProcCpu {
    private static final long TICK_MILLIS = 10;

    private ProcCpu() {}

    public static long treeMillis(long pid) {
        List<Long> pids = new ArrayList<>();
        ProcessHandle.of(pid).ifPresent(root -> {
            pids.add(root.pid());
            root.descendants().forEach(child -> pids.add(child.pid()));
        });
        long total = 0;
        for (long p : pids) {
            total += Math.max(0, millis(p));
        }
        return total;
    }

    /** CPU time of {@code pid} alone (all its threads), or -1. */
    public static long millis(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            // fields after the command name (which may contain spaces) start after the last ')'
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) * TICK_MILLIS; // utime, stime
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }
}
