package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.Processes;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * Moves a saved VM's RAM out of its state stream into the VM's own memory file. A clone runs on a private
 * copy-on-write mapping of its template's memory file, so its first save must carry the RAM (~100 MB); a helper QEMU of
 * the same shape, on a fresh own memory file ({@code share=on}), loads that full state and, without ever continuing
 * the guest, saves it again with {@code x-ignore-shared}: the RAM is then in the memory file and the state is device
 * state only (~70 KiB), so every resume maps the file instead of reading the RAM from a stream. Thread-safe for
 * different ids (no state of its own); the caller serialises work on one id and has no QEMU of it running.
 */
final class StateCompaction {
    private static final Duration TIMEOUT = Duration.ofMinutes(2);

    private final VmDriver driver;

    StateCompaction(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    /**
     * Loads {@code fullState} into a helper QEMU on a fresh {@link InstancePaths#memoryFile()} and saves the device
     * state to {@code compactState}; returns the milliseconds taken. The memory file is not synced here. On failure the
     * helper is killed, the memory file and {@code compactState} are deleted, {@code fullState} is left as it was, and
     * it throws.
     */
    long compact(InstanceSpec spec, Path fullState, Path compactState) {
        String id = spec.id();
        InstancePaths paths = driver.paths(id);
        long start = System.nanoTime();
        GuestImage image = GuestImage.load(driver.config().imageDir());
        // the helper's chardev would truncate the serial log of the session that just ended: keep it aside
        Path serialKept = paths.dir().resolve("serial.log.kept");
        VmFiles.rotate(paths.serialLog(), serialKept);
        VmFiles.deleteQuietly(paths.memoryFile());
        VmFiles.deleteQuietly(paths.incomingSocket());
        VmFiles.createPrivateFile(paths.memoryFile());
        try {
            Process process = driver.launcher().start(spec, image, paths,
                    new QemuCommand.Memory(paths.memoryFile(), true), paths.incomingSocket());
            try (Qmp qmp = QemuLauncher.awaitQmp(process, paths, System.nanoTime() + TIMEOUT.toNanos())) {
                Migration.restore(qmp, paths.incomingSocket(), fullState, false, TIMEOUT);
                Migration.save(qmp, driver.migrationSocket(id), driver.qemuUser(id), compactState, true, TIMEOUT,
                        () -> {});
                try {
                    qmp.execute("quit", Map.of(), Duration.ofSeconds(5));
                } catch (PalisadeException e) {
                    // QEMU may close the connection as it quits
                }
            }
            if (!Processes.awaitExit(process.pid(), Duration.ofSeconds(10))) {
                driver.processes().kill(id, process.pid());
            }
            driver.processes().reap(id);
            VmFiles.deleteQuietly(paths.qmpSocket());
            VmFiles.deleteQuietly(paths.pidFile());
            VmFiles.deleteQuietly(paths.incomingSocket());
            driver.config().cgroups().find(driver.cgroupName(id)).ifPresent(Cgroups.Group::remove);
            return (System.nanoTime() - start) / 1_000_000;
        } catch (RuntimeException e) {
            driver.launcher().abandon(id);
            VmFiles.deleteQuietly(paths.qmpSocket());
            VmFiles.deleteQuietly(paths.memoryFile());
            VmFiles.deleteQuietly(compactState);
            throw e;
        } finally {
            VmFiles.rotate(serialKept, paths.serialLog());
        }
    }
}
