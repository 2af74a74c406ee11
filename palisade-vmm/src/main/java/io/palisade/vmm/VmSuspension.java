package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.PgProbe;
import io.palisade.host.Processes;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Scale to zero of the vm rung: {@link #suspend} saves a VM's device state next to its memory file and lets QEMU
 * exit, publishing the state only once complete and synced; {@link #resume} continues it from that state at most once
 * (the state is taken before QEMU sees it), or cold boots from the volume. Thread-safe for different ids (no state of
 * its own); callers serialise suspend, resume, start and stop of one id.
 */
final class VmSuspension {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);
    private static final Duration PROBE_BEFORE_SAVE_TIMEOUT = Duration.ofSeconds(1);
    private static final Duration QUIET_MAX = Duration.ofMillis(500);

    private final VmDriver driver;
    private final StateCompaction compaction;

    VmSuspension(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
        this.compaction = new StateCompaction(driver);
    }

    /** See {@link VmDriver#suspend(InstanceSpec)}. */
    void suspend(InstanceSpec spec) {
        String id = spec.id();
        InstancePaths paths = driver.paths(id);
        QemuProcesses processes = driver.processes();
        Optional<Long> found = processes.findPid(id);
        if (found.isEmpty()) {
            if (isSuspended(id)) {
                return;
            }
            throw new PalisadeException(ErrorCode.CONFLICT, "vm " + id + " is not running; nothing to suspend");
        }
        long pid = found.get();
        boolean ignoreShared = QemuProcesses.cmdline(pid).stream()
                .anyMatch(a -> a.contains("mem-path=" + paths.memoryFile() + ",share=on"));
        long start = System.nanoTime();
        boolean postgresAnswered = postgresAnswers(id);
        // a guest saved busy (the probe's backend still exiting) makes every resume finish that work first
        long quietMs = QemuProcesses.awaitQuiet(
                QemuProcesses.cpuMicros(driver.config().cgroups().find(driver.cgroupName(id)), pid), QUIET_MAX);
        long saveMs;
        try (Qmp qmp = Qmp.connect(paths.qmpSocket(), Duration.ofSeconds(5))) {
            saveMs = Migration.save(qmp, driver.migrationSocket(id), driver.runningQemuUser(id, pid),
                    paths.partialStateFile(), ignoreShared, Duration.ofMinutes(2), () -> {});
            try {
                qmp.execute("quit", Map.of(), Duration.ofSeconds(5));
            } catch (PalisadeException e) {
                // QEMU may close the connection as it quits
            }
        } catch (RuntimeException e) {
            VmFiles.deleteQuietly(paths.partialStateFile());
            if (processes.findPid(id).isPresent()) {
                // the save failed but QEMU lives: let the guest run on rather than leave the database down
                try (Qmp qmp = Qmp.connect(paths.qmpSocket(), Duration.ofSeconds(5))) {
                    qmp.execute("cont", Map.of(), Duration.ofSeconds(5));
                } catch (RuntimeException again) {
                    e.addSuppressed(again);
                }
            } else {
                processes.reap(id);
            }
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "suspending vm " + id + " failed ("
                    + VmDriver.safeMessage(e) + "); it is "
                    + (driver.isRunning(id) ? "still running" : "stopped; resume cold boots it"), e);
        }
        if (!Processes.awaitExit(pid, Duration.ofSeconds(10))) {
            processes.kill(id, pid);
        }
        processes.reap(id);
        long compactMs = -1;
        if (!ignoreShared) {
            // a clone's first suspend: its RAM was the template's private mapping and is in the state; move it into
            // the clone's own memory file so that this and every later resume reads ~70 KiB, not the RAM
            Path fullState = paths.fullStateFile();
            try {
                Files.move(paths.partialStateFile(), fullState, StandardCopyOption.REPLACE_EXISTING);
                compactMs = compaction.compact(spec, fullState, paths.partialStateFile());
                ignoreShared = true;
                VmFiles.deleteQuietly(fullState);
            } catch (IOException | RuntimeException e) {
                log.warn("vm {}: cannot move the RAM of its first suspend into its own memory file ({}); keeping it"
                        + " in the saved state, the resume reads it from there", id, VmDriver.safeMessage(e));
                try {
                    if (Files.exists(fullState)) {
                        Files.move(fullState, paths.partialStateFile(), StandardCopyOption.REPLACE_EXISTING);
                    }
                } catch (IOException again) {
                    VmFiles.deleteQuietly(fullState);
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "suspending vm " + id + " failed while"
                            + " publishing its state; it is stopped and resume cold boots it", again);
                }
            }
        }
        try {
            // the memory file and the volume must reach the disk before the state that depends on them is published
            long syncStart = System.nanoTime();
            if (ignoreShared) {
                VmFiles.forceFile(paths.memoryFile());
            }
            VmFiles.forceFile(paths.dataVolume());
            long syncMs = (System.nanoTime() - syncStart) / 1_000_000;
            new SavedStateMode(!ignoreShared, postgresAnswered).write(paths.stateModeFile());
            Files.move(paths.partialStateFile(), paths.stateFile(), StandardCopyOption.REPLACE_EXISTING,
                    StandardCopyOption.ATOMIC_MOVE);
            if (!ignoreShared) {
                VmFiles.deleteQuietly(paths.memoryFile()); // the RAM is in the state; resume maps a fresh own file
            }
            log.info("vm {} suspended in {} ms (guest quiet after {} ms, save {} ms{}, sync {} ms, state {} bytes,"
                    + " {})", id, (System.nanoTime() - start) / 1_000_000, quietMs, saveMs,
                    compactMs < 0 ? "" : ", RAM moved into its own memory file " + compactMs + " ms", syncMs,
                    Files.size(paths.stateFile()), ignoreShared ? "RAM in its memory file" : "RAM in the state");
            if (!postgresAnswered) {
                log.warn("vm {}: PostgreSQL did not answer a probe just before the suspend; its resume waits for it",
                        id);
            }
        } catch (IOException e) {
            VmFiles.deleteQuietly(paths.partialStateFile());
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                    "suspending vm " + id + " failed while publishing its state; it is stopped and resume cold boots"
                            + " it", e);
        }
        VmFiles.deleteQuietly(paths.qmpSocket());
        VmFiles.deleteQuietly(paths.pidFile());
        driver.config().cgroups().find(driver.cgroupName(id)).ifPresent(Cgroups.Group::remove);
    }

    /**
     * Whether the guest's PostgreSQL answers a protocol probe just before the save. Recorded with the state: its
     * resume then takes the guest's acknowledgement as readiness instead of probing ({@link RestoreReadiness}).
     */
    private boolean postgresAnswers(String id) {
        return driver.networkPool().find(id).isPresent()
                && PgProbe.isReady(driver.endpoint(id), PROBE_BEFORE_SAVE_TIMEOUT);
    }

    boolean isSuspended(String id) {
        return Files.exists(driver.paths(id).stateFile()) && driver.processes().findPid(id).isEmpty();
    }

    /** See {@link VmDriver#resume}; the caller has checked that the volume exists and no QEMU runs. */
    RunningInstance resume(InstanceSpec spec, ProgressListener progress) {
        String id = spec.id();
        InstancePaths paths = driver.paths(id);
        GuestImage image = GuestImage.load(driver.config().imageDir());
        String failure = "no saved state";
        if (Files.exists(paths.stateFile())) {
            SavedStateMode mode = new SavedStateMode(false, false);
            try {
                // at most once: the state is taken before QEMU sees it; a crash from here on means a cold boot
                Files.move(paths.stateFile(), paths.consumedStateFile(), StandardCopyOption.REPLACE_EXISTING,
                        StandardCopyOption.ATOMIC_MOVE);
                mode = SavedStateMode.read(paths.stateModeFile());
            } catch (IOException e) {
                failure = "cannot take the saved state: " + e.getMessage();
            }
            if (Files.exists(paths.consumedStateFile())) {
                try {
                    progress.phase("restoring the saved VM state");
                    long start = System.nanoTime();
                    Endpoint endpoint = driver.snapshots().ensureNetwork(id);
                    if (!mode.ignoreShared()) {
                        VmFiles.deleteQuietly(paths.memoryFile());
                        VmFiles.createPrivateFile(paths.memoryFile());
                    } else if (!Files.exists(paths.memoryFile())) {
                        throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the memory file is missing");
                    }
                    SnapshotRestore.Restored restored = driver.snapshots().restoreOnce(spec, image, paths, endpoint,
                            new QemuCommand.Memory(paths.memoryFile(), true), paths.consumedStateFile(),
                            mode.ignoreShared(), true, mode.postgresAnswered());
                    Map<String, String> details = restored.boot().details();
                    if (restored.clockSync() != ClockSync.SERIAL) {
                        try (Connection admin = GuestAdmin.adminConnection(id, paths, image, endpoint)) {
                            details.put("clock_offset_ms", Long.toString(GuestClock.resyncOverSql(admin, id)));
                            ClockSync.SQL.putInto(details);
                        }
                    }
                    ResumePath.RESTORE.putInto(details);
                    details.put("resume_ms", Long.toString((System.nanoTime() - start) / 1_000_000));
                    log.info("vm {} resumed from its saved state in {} ms ({})", id, details.get("resume_ms"),
                            details);
                    return new RunningInstance(id, endpoint, Instant.now(), details);
                } catch (RuntimeException | SQLException e) {
                    failure = VmDriver.safeMessage(e);
                    driver.launcher().abandon(id);
                }
            }
        }
        log.warn("vm {}: cannot resume from a saved state ({}); cold booting from its volume", id, failure);
        BootWatchdog.Boot boot = driver.watchdog().boot(spec, image, paths, progress);
        ResumePath.COLD.putInto(boot.details());
        boot.details().put("resume_fallback_reason", failure);
        return new RunningInstance(id, boot.endpoint(), Instant.now(), boot.details());
    }
}
