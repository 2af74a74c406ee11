package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.Processes;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Starts QEMU for an instance: its command line ({@link QemuCommand}), its cgroup joined, inside its network namespace,
 * in a session of its own, as its own OS user; records the pid file and the started process; and undoes a start that
 * failed. Once {@link #refuseStarts()} ran, no QEMU starts. Thread-safe for different ids.
 */
final class QemuLauncher {
    private final VmDriver driver;
    /** Read-held by each QEMU's start through its process being tracked; write-held to set {@link #refused}. */
    private final ReadWriteLock starts = new ReentrantReadWriteLock();
    private boolean refused;

    QemuLauncher(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    /**
     * Starts QEMU (cgroup joined, in its namespace, own session) and records its pid. {@code incomingSocket}: where it
     * waits for a saved state, or null for a cold boot.
     */
    Process start(InstanceSpec spec, GuestImage image, InstancePaths paths, QemuCommand.Memory memory,
            Path incomingSocket) {
        String id = spec.id();
        VmDriverConfig config = driver.config();
        Accelerator accelerator = driver.accelerator();
        VmFiles.deleteQuietly(paths.qmpSocket());
        QemuCommand qemu = new QemuCommand(
                config.qemuBinary(),
                accelerator,
                image,
                spec.plan(),
                paths.dataVolume(),
                paths,
                VmNetwork.namespaceName(id),
                driver.tscKhz(),
                config.serviceUser().dropsPrivileges() ? driver.qemuUser(id).name() : null,
                memory,
                incomingSocket);
        long overheadMb = accelerator.kind() == Accelerator.Kind.TCG ? 256 : 128;
        Optional<Cgroups.Group> group = config.cgroups()
                .create(driver.cgroupName(id), spec.plan().cpu(), (spec.plan().memoryMb() + overheadMb) * VmFiles.MIB);
        // its own session: a Ctrl-C or SIGHUP meant for palisade's process group must not take the VMs down
        List<String> command = new ArrayList<>(List.of("setsid"));
        if (group.isPresent()) {
            command.addAll(List.of("sh", "-c", group.get().joinShellCommand() + " && exec \"$@\"", "sh"));
        }
        command.addAll(driver.network(id).execPrefix());
        command.addAll(qemu.arguments());
        Process process;
        starts.readLock().lock();
        try {
            if (refused) {
                group.ifPresent(Cgroups.Group::remove);
                throw new PalisadeException(ErrorCode.NOT_READY, "vm " + id + " not started: this process is exiting");
            }
            try {
                process = Processes.builder(command)
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                        .redirectErrorStream(true)
                        .redirectOutput(ProcessBuilder.Redirect.appendTo(paths.qemuLog().toFile()))
                        .start();
                VmFiles.writePrivate(paths.pidFile(), Long.toString(process.pid()), false);
            } catch (IOException e) {
                throw new PalisadeException(
                        ErrorCode.DRIVER_FAILURE, "cannot start QEMU for vm " + id + ": " + e.getMessage(), e);
            }
            driver.processes().track(id, process);
        } finally {
            starts.readLock().unlock();
        }
        return process;
    }

    /**
     * No QEMU starts from now on (a process that exits mid-build). Returns once a start in progress has its process
     * tracked, so whoever then looks for the VMs' processes finds every one this launcher started.
     */
    void refuseStarts() {
        starts.writeLock().lock();
        try {
            refused = true;
        } finally {
            starts.writeLock().unlock();
        }
    }

    /**
     * Connects to the QMP socket of a QEMU just started, polling until it listens; fails when QEMU exits first
     * (quoting its log) or the deadline ({@link System#nanoTime()}) passes.
     */
    static Qmp awaitQmp(Process process, InstancePaths paths, long deadlineNanos) {
        while (true) {
            if (!process.isAlive()) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "QEMU exited with code " + process.exitValue()
                        + " before restoring; QEMU said: "
                        + Processes.tail(String.join("\n", Processes.tailFile(paths.qemuLog(), 5)), 3));
            }
            if (System.nanoTime() > deadlineNanos) {
                throw new PalisadeException(ErrorCode.TIMEOUT, "QEMU's QMP socket did not answer");
            }
            if (Files.exists(paths.qmpSocket())) {
                try {
                    return Qmp.connect(paths.qmpSocket(), Duration.ofSeconds(5));
                } catch (PalisadeException e) {
                    // not listening yet
                }
            }
            Processes.sleep(Duration.ofMillis(5));
        }
    }

    /** After a failed boot or restore (QEMU gone or killed): forgets the process, removes pid file and cgroup. */
    void cleanupAfterFailure(String id) {
        driver.processes().forget(id);
        VmFiles.deleteQuietly(driver.paths(id).pidFile());
        driver.config().cgroups().find(driver.cgroupName(id)).ifPresent(Cgroups.Group::remove);
    }

    /** Kills a QEMU that was restoring or booting for the instance and removes its pid file and cgroup. */
    void abandon(String id) {
        Process process = driver.processes().started(id).orElse(null);
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
        }
        driver.processes().findPid(id).ifPresent(pid -> driver.processes().kill(id, pid));
        driver.processes().reap(id);
        cleanupAfterFailure(id);
        VmFiles.deleteQuietly(driver.paths(id).consumedStateFile());
        VmFiles.deleteQuietly(driver.paths(id).incomingSocket());
    }
}
