package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.Processes;
import io.palisade.host.SafeFiles;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which QEMU belongs to which instance, and ending it: the processes this driver started (still in their wrapper, or
 * QEMU), the live QEMU of an id (its pid file, else the process table, so VMs are found after a restart of palisade),
 * network namespaces left without an instance, a clean shutdown and SIGKILL. Thread-safe (a concurrent map of started
 * processes; everything else is read from {@code /proc}, {@code /run/netns} and the instance directory).
 */
final class QemuProcesses {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);
    static final Duration KILL_WAIT = Duration.ofSeconds(10);
    private static final Duration QUIET_WINDOW = Duration.ofMillis(20);
    private static final Duration QUIET_CPU = Duration.ofMillis(2);
    private static final Pattern INET = Pattern.compile("inet (\\d+\\.\\d+\\.\\d+\\.\\d+)/");

    private final Path instancesDir;
    private final Map<String, Process> started = new ConcurrentHashMap<>();

    QemuProcesses(Path instancesDir) {
        this.instancesDir = requireNonNull(instancesDir, "instancesDir is null");
    }

    /** Remembers the process (wrapper that becomes QEMU) just started for an instance. */
    void track(String id, Process process) {
        started.put(id, process);
    }

    /** The process this driver started for an instance, if it still remembers one. */
    Optional<Process> started(String id) {
        return Optional.ofNullable(started.get(id));
    }

    /** Forgets the started process of an instance without waiting for it. */
    void forget(String id) {
        started.remove(id);
    }

    /** Forgets every started process (VMs keep running; a new driver finds them through their pid files). */
    void forgetAll() {
        started.clear();
    }

    /** Whether a QEMU of the instance exists, running or still starting (in its wrapper). */
    boolean hasProcess(String id) {
        Process starting = started.get(id);
        return (starting != null && starting.isAlive()) || findPid(id).isPresent();
    }

    /** Forgets the started process of an instance and waits (bounded) until it has exited. */
    void reap(String id) {
        Process process = started.remove(id);
        if (process != null) {
            try {
                process.waitFor(KILL_WAIT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** SIGKILL, then waits for the exit; fails if the process survives {@link #KILL_WAIT}. */
    void kill(String id, long pid) {
        Processes.signal(pid, "KILL");
        if (!Processes.awaitExit(pid, KILL_WAIT)) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "QEMU of vm " + id + " (pid " + pid + ") survived SIGKILL for "
                            + KILL_WAIT.toSeconds() + " s");
        }
        reap(id);
    }

    /** Clean guest shutdown (PostgreSQL fast shutdown, file systems synced), bounded, then QMP quit, then SIGKILL. */
    void shutdown(String id, long pid, Path qmpSocket, Duration stopTimeout) {
        long start = System.nanoTime();
        try (Qmp qmp = Qmp.connect(qmpSocket, Duration.ofSeconds(5))) {
            qmp.execute("system_powerdown", Map.of(), Duration.ofSeconds(5));
            if (Processes.awaitExit(pid, stopTimeout)) {
                log.info("vm {} shut down cleanly in {} ms", id, (System.nanoTime() - start) / 1_000_000);
                return;
            }
            log.warn("vm {} did not power off within {} s; telling QEMU to quit", id, stopTimeout.toSeconds());
            qmp.execute("quit", Map.of(), Duration.ofSeconds(5));
        } catch (PalisadeException e) {
            log.warn("vm {}: QMP shutdown failed ({}); killing QEMU", id, e.getMessage());
        }
        if (!Processes.awaitExit(pid, Duration.ofSeconds(5))) {
            kill(id, pid);
        }
    }

    /** The live QEMU of an instance: from its pid file if that still names our QEMU, else from the process table. */
    Optional<Long> findPid(String id) {
        Path pidFile = InstancePaths.of(instancesDir, id).pidFile();
        if (Files.exists(pidFile)) {
            try {
                long pid = Long.parseLong(SafeFiles.readSmall(pidFile, 64).orElse(""));
                if (isOurQemu(pid, id) && !Processes.isZombie(pid)) {
                    return Optional.of(pid);
                }
            } catch (PalisadeException | NumberFormatException e) {
                // fall back to the process table
            }
        }
        Long pid = qemuProcesses().get(id);
        return pid == null || Processes.isZombie(pid) ? Optional.empty() : Optional.of(pid);
    }

    /** QEMU processes whose command line names a VM of this driver's instances dir, by id. */
    Map<String, Long> qemuProcesses() {
        Map<String, Long> result = new LinkedHashMap<>();
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path proc : procs.toList()) {
                String name = proc.getFileName().toString();
                if (!name.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                List<String> args = cmdline(Long.parseLong(name));
                int at = args.indexOf("-name");
                if (at < 0 || at + 1 >= args.size() || !args.getFirst().contains("qemu")) {
                    continue;
                }
                String vmName = args.get(at + 1);
                if (!vmName.startsWith(VmNetwork.NAMESPACE_PREFIX)) {
                    continue;
                }
                String id = vmName.substring(VmNetwork.NAMESPACE_PREFIX.length());
                String prefix = instancesDir.resolve(id) + "/";
                if (args.stream().anyMatch(a -> a.contains(prefix))) {
                    result.put(id, Long.parseLong(name));
                }
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot list /proc", e);
        }
        return result;
    }

    private static boolean isOurQemu(long pid, String id) {
        List<String> args = cmdline(pid);
        int at = args.indexOf("-name");
        return at >= 0 && at + 1 < args.size() && args.get(at + 1).equals(VmNetwork.namespaceName(id))
                && args.getFirst().contains("qemu");
    }

    /** The real uid a process runs as (its status, not its /proc owner: a QEMU that dropped to -runas is not dumpable). */
    static Optional<Integer> uid(long pid) {
        try {
            return Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")).stream()
                    .filter(line -> line.startsWith("Uid:"))
                    .map(line -> Integer.parseInt(line.substring(4).strip().split("\\s+")[0]))
                    .findFirst();
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** The command line of a process; empty when it is gone or unreadable. */
    static List<String> cmdline(long pid) {
        try {
            byte[] bytes = Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline"));
            if (bytes.length == 0) {
                return List.of();
            }
            return List.of(new String(bytes, StandardCharsets.UTF_8).split("\0"));
        } catch (IOException e) {
            return List.of();
        }
    }

    /**
     * CPU time all threads of a process have used so far, in nanoseconds ({@code /proc/<pid>/task/*\/schedstat});
     * -1 when the process is gone or the kernel does not report it. A thread that ends takes its time with it, so the
     * sum may go down.
     */
    static long cpuNanos(long pid) {
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc", Long.toString(pid), "task"))) {
            long sum = 0;
            boolean read = false;
            for (Path task : tasks) {
                try {
                    String stat = Files.readString(task.resolve("schedstat"));
                    sum += Long.parseLong(stat.substring(0, stat.indexOf(' ')));
                    read = true;
                } catch (NoSuchFileException e) {
                    // the thread ended meanwhile, or the kernel keeps no schedstat
                }
            }
            return read ? sum : -1;
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /**
     * A QEMU's CPU time in microseconds: its cgroup's usage when it has one (every thread, ended ones included), else
     * the sum over its live threads ({@link #cpuNanos}); -1 when neither is readable.
     */
    static LongSupplier cpuMicros(Optional<Cgroups.Group> group, long pid) {
        if (group.isPresent() && group.get().cpuMicros() >= 0) {
            return group.get()::cpuMicros;
        }
        return () -> {
            long nanos = cpuNanos(pid);
            return nanos < 0 ? -1 : nanos / 1000;
        };
    }

    /**
     * Waits, at most {@code max}, until a QEMU has used less than {@link #QUIET_CPU} of CPU over {@link #QUIET_WINDOW}
     * ({@code cpuMicros}: {@link #cpuMicros}), i.e. its guest idles: a guest saved busy makes every restore of that
     * state finish the work first, beside its first client. Returns the ms waited; -1 when the CPU time is not
     * readable (the caller goes ahead at once).
     */
    static long awaitQuiet(LongSupplier cpuMicros, Duration max) {
        long start = System.nanoTime();
        long deadline = start + max.toNanos();
        long before = cpuMicros.getAsLong();
        if (before < 0) {
            return -1;
        }
        while (System.nanoTime() < deadline) {
            Processes.sleep(QUIET_WINDOW);
            long now = cpuMicros.getAsLong();
            if (now < 0) {
                return -1;
            }
            if (now >= before && now - before < QUIET_CPU.toNanos() / 1000) {
                break;
            }
            before = now;
        }
        return (System.nanoTime() - start) / 1_000_000;
    }

    /**
     * Namespaces {@code pal-<id>} without a directory or slot here whose veth address lies in this driver's pool
     * (another driver on the same host, with its own pool, keeps its own).
     */
    static Set<String> orphanNamespaces(Set<String> known, NetworkPool pool) {
        Set<String> result = new TreeSet<>();
        Path netns = Path.of("/run/netns");
        if (!Files.isDirectory(netns)) {
            return result;
        }
        try (var names = Files.list(netns)) {
            for (String name : names.map(p -> p.getFileName().toString()).toList()) {
                if (!name.startsWith(VmNetwork.NAMESPACE_PREFIX)) {
                    continue;
                }
                String id = name.substring(VmNetwork.NAMESPACE_PREFIX.length());
                if (known.contains(id)) {
                    continue;
                }
                Processes.Result addr = Processes.run(
                        List.of("ip", "-n", name, "-4", "-o", "addr", "show", "dev", VmNetwork.NS_VETH),
                        Duration.ofSeconds(5), null);
                Matcher m = INET.matcher(addr.output());
                if (addr.ok() && m.find() && pool.cidr().contains(m.group(1))) {
                    result.add(id);
                }
            }
        } catch (IOException e) {
            log.debug("cannot list {}: {}", netns, e.getMessage());
        }
        return result;
    }
}
