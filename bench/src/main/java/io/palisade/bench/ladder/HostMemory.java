package io.palisade.bench.ladder;

import static java.util.Objects.requireNonNull;

import io.palisade.bench.vm.ProcCpu;
import io.palisade.bench.vm.ProcMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * What palisade's process tree holds in memory, by kind: this JVM (palisade in-process, with the benchmark's client),
 * and each server it started as a child — the metadata store, the shared servers, the {@code process} tenants'
 * postmasters, the {@code vm} tenants' QEMUs — each with all its descendants (backends, auxiliary processes). A child
 * is told apart by its command line: QEMU's binary, or the data directory a postmaster runs on. Immutable.
 */
public final class HostMemory {
    /** The kinds of memory, in report order. */
    public enum Kind {
        PALISADE("palisade JVM (in-process, with the benchmark's client)"),
        STORE("metadata store (postgres)"),
        SHARED("shared servers (database + schema rungs)"),
        PROCESS("process tenants' postmasters"),
        VM("vm tenants' QEMU processes"),
        OTHER("other children");

        private final String label;

        Kind(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    /**
     * One kind: its root processes (pids) and the summed memory of their trees (of the process alone when
     * {@code trees} is false: this JVM, whose tree is everything).
     */
    public record Part(List<Long> roots, ProcMemory.Usage usage, boolean trees) {
        public Part {
            roots = List.copyOf(roots);
            requireNonNull(usage, "usage is null");
        }

        /** CPU time of this kind's processes, in milliseconds (see {@link ProcCpu}). */
        public long cpuMillis() {
            return roots.stream().mapToLong(pid -> trees ? ProcCpu.treeMillis(pid) : Math.max(0, ProcCpu.millis(pid)))
                    .sum();
        }
    }

    private final Map<Kind, Part> parts;

    private HostMemory(Map<Kind, Part> parts) {
        this.parts = parts;
    }

    /** Reads {@code /proc} now for this JVM and its children; {@code dataDir} is palisade's {@code server.data-dir}. */
    public static HostMemory snapshot(Path dataDir) {
        Path data = dataDir.toAbsolutePath().normalize();
        Map<Kind, List<Long>> roots = new EnumMap<>(Kind.class);
        for (Kind kind : Kind.values()) {
            roots.put(kind, new ArrayList<>());
        }
        roots.get(Kind.PALISADE).add(ProcessHandle.current().pid());
        ProcessHandle.current().children().forEach(child -> roots.get(kindOf(child.pid(), data)).add(child.pid()));
        Map<Kind, Part> parts = new EnumMap<>(Kind.class);
        for (Kind kind : Kind.values()) {
            int processes = 0;
            long rss = 0;
            long pss = 0;
            for (long pid : roots.get(kind)) {
                ProcMemory.Usage usage = kind == Kind.PALISADE ? ProcMemory.of(pid) : ProcMemory.ofTree(pid);
                processes += usage.processes();
                rss += Math.max(0, usage.rssBytes());
                pss += Math.max(0, usage.pssBytes());
            }
            parts.put(kind, new Part(roots.get(kind), new ProcMemory.Usage(processes, rss, pss),
                    kind != Kind.PALISADE));
        }
        return new HostMemory(parts);
    }

    private static Kind kindOf(long pid, Path data) {
        List<String> arguments = commandLine(pid);
        if (arguments.stream().anyMatch(a -> a.contains("qemu-system"))) {
            return Kind.VM;
        }
        int d = arguments.indexOf("-D");
        if (d < 0 || d + 1 >= arguments.size()) {
            return Kind.OTHER;
        }
        Path dir = Path.of(arguments.get(d + 1)).toAbsolutePath().normalize();
        if (dir.startsWith(data.resolve("store"))) {
            return Kind.STORE;
        }
        if (dir.startsWith(data.resolve("shared"))) {
            return Kind.SHARED;
        }
        return dir.startsWith(data.resolve("instances/process")) ? Kind.PROCESS : Kind.OTHER;
    }

    private static List<String> commandLine(long pid) {
        try {
            String raw = new String(Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline")));
            return List.of(raw.split("\0"));
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
    }

    public Part part(Kind kind) {
        return parts.get(kind);
    }

    /** Every kind together. */
    public ProcMemory.Usage total() {
        int processes = 0;
        long rss = 0;
        long pss = 0;
        for (Part part : parts.values()) {
            processes += part.usage().processes();
            rss += part.usage().rssBytes();
            pss += part.usage().pssBytes();
        }
        return new ProcMemory.Usage(processes, rss, pss);
    }
}
