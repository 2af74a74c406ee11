package io.palisade.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Per-instance CPU and memory caps through cgroups, v1 or v2, whichever this host has writable. Every group lives under
 * a {@code palisade} parent so that leftovers are easy to find. Thread-safe (no mutable state).
 */
public final class Cgroups {
    private static final Logger log = LoggerFactory.getLogger(Cgroups.class);
    private static final long CFS_PERIOD_US = 100_000;

    public enum Mode {
        V1,
        V2,
        NONE
    }

    private final Path root;
    private final Mode mode;
    private final String reason;
    private final String parent;

    private Cgroups(Path root, Mode mode, String reason, String parent) {
        this.root = root;
        this.mode = mode;
        this.reason = reason;
        this.parent = parent;
    }

    /** Probes {@code /sys/fs/cgroup}; {@code parent} names the group that holds palisade's groups. */
    public static Cgroups detect(String parent) {
        return detect(Path.of("/sys/fs/cgroup"), parent);
    }

    static Cgroups detect(Path root, String parent) {
        Path v1cpu = root.resolve("cpu");
        Path v1mem = root.resolve("memory");
        if (Files.isDirectory(v1cpu) && Files.isDirectory(v1mem) && Files.exists(v1cpu.resolve("cpu.cfs_quota_us"))) {
            if (tryMkdir(v1cpu.resolve(parent)) && tryMkdir(v1mem.resolve(parent))) {
                return new Cgroups(root, Mode.V1, "cgroup v1 cpu and memory controllers are writable", parent);
            }
            return new Cgroups(root, Mode.NONE, "cgroup v1 controllers exist but are not writable by this user", parent);
        }
        Path controllers = root.resolve("cgroup.controllers");
        if (Files.exists(controllers)) {
            try {
                String available = Files.readString(controllers);
                if (!available.contains("cpu") || !available.contains("memory")) {
                    return new Cgroups(root, Mode.NONE, "cgroup v2 without cpu/memory controllers", parent);
                }
                Path group = root.resolve(parent);
                if (tryMkdir(group)) {
                    Files.writeString(root.resolve("cgroup.subtree_control"), "+cpu +memory");
                    Files.writeString(group.resolve("cgroup.subtree_control"), "+cpu +memory");
                    return new Cgroups(root, Mode.V2, "cgroup v2 with cpu and memory controllers", parent);
                }
            } catch (IOException e) {
                return new Cgroups(root, Mode.NONE, "cgroup v2 is not writable: " + e.getMessage(), parent);
            }
        }
        return new Cgroups(root, Mode.NONE, "no writable cgroup hierarchy at " + root, parent);
    }

    /** No caps at all (e.g. the uncapped shared-machine baseline of a benchmark); {@code reason} is shown in health. */
    public static Cgroups none(String reason) {
        return new Cgroups(Path.of("/nonexistent"), Mode.NONE, reason, "palisade");
    }

    public Mode mode() {
        return mode;
    }

    /** Why this mode was chosen; shown in the health endpoint. */
    public String reason() {
        return reason;
    }

    /**
     * Creates (or updates) the group for one instance with a CPU quota of {@code cpus} cores and a hard memory limit.
     * Returns empty when this host has no usable cgroups.
     */
    public Optional<Group> create(String name, int cpus, long memoryBytes) {
        try {
            switch (mode) {
                case V1 -> {
                    Path cpu = root.resolve("cpu").resolve(parent).resolve(name);
                    Path mem = root.resolve("memory").resolve(parent).resolve(name);
                    Files.createDirectories(cpu);
                    Files.createDirectories(mem);
                    Files.writeString(cpu.resolve("cpu.cfs_period_us"), Long.toString(CFS_PERIOD_US));
                    Files.writeString(cpu.resolve("cpu.cfs_quota_us"), Long.toString(CFS_PERIOD_US * cpus));
                    Files.writeString(mem.resolve("memory.limit_in_bytes"), Long.toString(memoryBytes));
                    writeIfExists(mem.resolve("memory.swappiness"), "0");
                    List<Path> dirs = new ArrayList<>(List.of(cpu, mem));
                    Path acct = root.resolve("cpuacct");
                    if (Files.isDirectory(acct) && !Files.exists(cpu.resolve("cpuacct.usage"))) {
                        Files.createDirectories(acct.resolve(parent).resolve(name));
                        dirs.add(acct.resolve(parent).resolve(name));
                    }
                    return Optional.of(new Group(name, dirs, mode));
                }
                case V2 -> {
                    Path group = root.resolve(parent).resolve(name);
                    Files.createDirectories(group);
                    Files.writeString(group.resolve("cpu.max"), (CFS_PERIOD_US * cpus) + " " + CFS_PERIOD_US);
                    Files.writeString(group.resolve("memory.max"), Long.toString(memoryBytes));
                    writeIfExists(group.resolve("memory.swap.max"), "0");
                    return Optional.of(new Group(name, List.of(group), mode));
                }
                default -> {
                    return Optional.empty();
                }
            }
        } catch (IOException e) {
            log.warn("cannot create cgroup {} ({}); instance runs without caps", name, e.getMessage());
            return Optional.empty();
        }
    }

    /** Existing group for an instance, if any. */
    public Optional<Group> find(String name) {
        List<Path> dirs = switch (mode) {
            case V1 -> java.util.stream.Stream.of("cpu", "memory", "cpuacct")
                    .map(c -> root.resolve(c).resolve(parent).resolve(name))
                    .filter(Files::isDirectory)
                    .toList();
            case V2 -> List.of(root.resolve(parent).resolve(name));
            case NONE -> List.of();
        };
        return dirs.isEmpty() || !Files.isDirectory(dirs.getFirst())
                ? Optional.empty()
                : Optional.of(new Group(name, dirs, mode));
    }

    /** Names of every instance group under the palisade parent (for leak checks and reconciliation). */
    public List<String> list() {
        Path dir = switch (mode) {
            case V1 -> root.resolve("cpu").resolve(parent);
            case V2 -> root.resolve(parent);
            case NONE -> null;
        };
        if (dir == null || !Files.isDirectory(dir)) {
            return List.of();
        }
        try (var children = Files.list(dir)) {
            return children.filter(Files::isDirectory).map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    private static boolean tryMkdir(Path dir) {
        try {
            Files.createDirectories(dir);
            return Files.isWritable(dir);
        } catch (IOException e) {
            return false;
        }
    }

    private static void writeIfExists(Path file, String value) {
        if (Files.exists(file)) {
            try {
                Files.writeString(file, value);
            } catch (IOException ignored) {
                // optional knob
            }
        }
    }

    /** One instance's group (one directory per controller on v1). */
    public record Group(String name, List<Path> dirs, Mode mode) {
        /** A shell fragment that moves the current shell ({@code $$}) into this group, for use before {@code exec}. */
        public String joinShellCommand() {
            List<String> parts = new ArrayList<>();
            for (Path dir : dirs) {
                parts.add("echo $$ > '" + dir.resolve("cgroup.procs") + "'");
            }
            return String.join(" && ", parts);
        }

        /** Whether {@code pid} is a member of this group (in each of its hierarchies). */
        public boolean holds(long pid) {
            String wanted = Long.toString(pid);
            for (Path dir : dirs) {
                try {
                    if (!Files.readAllLines(dir.resolve("cgroup.procs")).contains(wanted)) {
                        return false;
                    }
                } catch (IOException e) {
                    return false;
                }
            }
            return true;
        }

        public void addProcess(long pid) throws IOException {
            for (Path dir : dirs) {
                Files.writeString(dir.resolve("cgroup.procs"), Long.toString(pid));
            }
        }

        /** CPU time used by the group in milliseconds, or -1. */
        public long cpuMillis() {
            long micros = cpuMicros();
            return micros < 0 ? -1 : micros / 1000;
        }

        /** CPU time used by the group in microseconds (every process it held, ended ones included), or -1. */
        public long cpuMicros() {
            try {
                if (mode == Mode.V1) {
                    for (Path dir : dirs) {
                        Path usage = dir.resolve("cpuacct.usage");
                        if (Files.exists(usage)) {
                            return Long.parseLong(Files.readString(usage).strip()) / 1000;
                        }
                    }
                    return -1;
                }
                for (String line : Files.readAllLines(dirs.getFirst().resolve("cpu.stat"))) {
                    if (line.startsWith("usage_usec ")) {
                        return Long.parseLong(line.substring(11).strip());
                    }
                }
                return -1;
            } catch (IOException | RuntimeException e) {
                return -1;
            }
        }

        /** Memory charged to the group in bytes, or -1. */
        public long memoryBytes() {
            try {
                for (Path dir : dirs) {
                    for (String name : List.of("memory.usage_in_bytes", "memory.current")) {
                        if (Files.exists(dir.resolve(name))) {
                            return Long.parseLong(Files.readString(dir.resolve(name)).strip());
                        }
                    }
                }
                return -1;
            } catch (IOException | RuntimeException e) {
                return -1;
            }
        }

        /**
         * The group's working set in bytes, or -1: the memory charged to it less its inactive file cache, which the
         * kernel drops first when the group nears its limit (what container runtimes call the working set). A server
         * that has written many files has their cache charged to its group; that alone does not make it full.
         */
        public long workingSetBytes() {
            long charged = memoryBytes();
            if (charged < 0) {
                return -1;
            }
            String field = mode == Mode.V1 ? "total_inactive_file " : "inactive_file ";
            for (Path dir : dirs) {
                Path stat = dir.resolve("memory.stat");
                if (!Files.exists(stat)) {
                    continue;
                }
                try {
                    for (String line : Files.readAllLines(stat)) {
                        if (line.startsWith(field)) {
                            return Math.max(0, charged - Long.parseLong(line.substring(field.length()).strip()));
                        }
                    }
                } catch (IOException | RuntimeException e) {
                    return charged;
                }
            }
            return charged;
        }

        /** Removes the group; processes must be gone. Retries briefly because the kernel frees groups lazily. */
        public void remove() {
            for (Path dir : dirs.reversed()) {
                for (int attempt = 0; attempt < 50 && Files.exists(dir); attempt++) {
                    try {
                        Files.delete(dir);
                    } catch (IOException e) {
                        Processes.sleep(java.time.Duration.ofMillis(20));
                    }
                }
                if (Files.exists(dir)) {
                    log.warn("cgroup {} is still busy and was left behind", dir);
                }
            }
        }
    }
}
