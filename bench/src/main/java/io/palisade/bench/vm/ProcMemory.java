package io.palisade.bench.vm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Resident memory of a process or a process tree from {@code /proc}: RSS (counts shared pages once per process) and
 * PSS (shares them out). Stateless.
 */
public final class ProcMemory {
    private ProcMemory() {}

    /** RSS and PSS in bytes, summed over the processes. */
    public record Usage(int processes, long rssBytes, long pssBytes) {}

    public static Usage of(long pid) {
        return new Usage(1, field(Path.of("/proc", Long.toString(pid), "status"), "VmRSS:"),
                field(Path.of("/proc", Long.toString(pid), "smaps_rollup"), "Pss:"));
    }

    /** {@code pid} and all its descendants (the postmaster and its backends and auxiliary processes). */
    public static Usage ofTree(long pid) {
        List<Long> pids = new ArrayList<>();
        ProcessHandle.of(pid).ifPresent(root -> {
            pids.add(root.pid());
            root.descendants().forEach(child -> pids.add(child.pid()));
        });
        long rss = 0;
        long pss = 0;
        for (long p : pids) {
            Usage one = of(p);
            rss += Math.max(0, one.rssBytes());
            pss += Math.max(0, one.pssBytes());
        }
        return new Usage(pids.size(), rss, pss);
    }

    private static long field(Path file, String name) {
        try (Stream<String> lines = Files.lines(file)) {
            return lines.filter(l -> l.startsWith(name))
                    .findFirst()
                    .map(l -> Long.parseLong(l.substring(name.length()).strip().split("\\s+")[0]) * 1024)
                    .orElse(-1L);
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }
}
