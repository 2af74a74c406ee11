package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.PgProbe;
import io.palisade.host.Processes;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ProgressListener;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Cold boots of a VM under a watchdog: creates its network, starts QEMU with a fresh memory file, follows the serial
 * markers and kills and reboots a guest that hangs early (the TCG timer-calibration hang), dies, or is not ready in
 * time, at most {@code vm.boot-retries} times; the first boot of a restored data directory gets the longer recovery
 * bound and a stall check instead. Thread-safe for different ids (a counter of retries is its only state).
 */
final class BootWatchdog {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);
    private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(1);
    /** Healthy TCG guests print their first marker after 1-5 s even on a loaded 2-core host; hung ones never do. */
    private static final Duration FIRST_MARKER_TIMEOUT = Duration.ofSeconds(20);
    /** A recovering guest whose data volume sees no I/O for this long is stuck, not slow. */
    static final Duration RECOVERY_STALL = Duration.ofMinutes(5);
    private static final Duration RECOVERY_PROGRESS_INTERVAL = Duration.ofSeconds(10);
    /**
     * A cold boot whose {@code ready} marker has not come this long after {@code postgres-started} is probed anyway,
     * once per {@link #FALLBACK_PROBE_INTERVAL}: the marker line may be lost or broken by a kernel message on the same
     * console, and PostgreSQL may well be up.
     */
    static final Duration READY_MARKER_GRACE = Duration.ofSeconds(5);
    private static final Duration FALLBACK_PROBE_INTERVAL = Duration.ofSeconds(1);

    /** A running VM: where its PostgreSQL answers and what its boot or restore reported. */
    record Boot(Endpoint endpoint, Map<String, String> details) {
        Boot {
            requireNonNull(endpoint, "endpoint is null");
            requireNonNull(details, "details is null");
        }
    }

    private final VmDriver driver;
    private final AtomicLong watchdogRetries = new AtomicLong();

    BootWatchdog(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    /** How often the watchdog killed and restarted a hung guest since the driver started. */
    long retries() {
        return watchdogRetries.get();
    }

    /** A cold boot from the volume: network, QEMU, watchdog retries, PostgreSQL answering. */
    Boot boot(InstanceSpec spec, GuestImage image, InstancePaths paths, ProgressListener progress) {
        return boot(spec, image, paths, progress, false);
    }

    /**
     * The first boot of a volume made from a restored data directory (see {@link VmRestore}): cold, with the bound
     * {@code vm.restore-timeout}; ready only once the guest says {@code ready} (recovery ended, promoted); a postmaster
     * that exits, a recovery that stops touching the disk for {@link #RECOVERY_STALL}, or the bound passing fail at
     * once (no watchdog retry: the next attempt would replay the same WAL). Early hangs (no first marker) are retried.
     */
    Boot bootForRestore(InstanceSpec spec, GuestImage image, InstancePaths paths, ProgressListener progress) {
        return boot(spec, image, paths, progress, true);
    }

    private Boot boot(InstanceSpec spec, GuestImage image, InstancePaths paths, ProgressListener progress,
            boolean recovery) {
        String id = spec.id();
        Accelerator accelerator = driver.accelerator();
        NetworkPool.Slot slot = driver.networkPool().allocate(id);
        Endpoint endpoint = slot.postgresEndpoint();
        VmNetwork network = driver.network(id);
        progress.phase("creating the network namespace " + network.namespace());
        long networkStart = System.nanoTime();
        network.create(slot);
        long networkMs = (System.nanoTime() - networkStart) / 1_000_000;
        int retries = 0;
        List<String> failures = new ArrayList<>();
        while (true) {
            progress.phase("booting the microVM (" + accelerator.kind().slug()
                    + (retries > 0 ? ", watchdog retry " + retries : "") + ")");
            try {
                Map<String, String> details = bootOnce(spec, image, paths, endpoint, recovery ? progress : null);
                details.put("watchdog_retries", Integer.toString(retries));
                details.put("network_ms", Long.toString(networkMs));
                details.put("netns", network.namespace());
                details.put("endpoint", endpoint.toString());
                return new Boot(endpoint, details);
            } catch (BootHang hang) {
                failures.add(hang.getMessage());
                if (retries >= driver.config().maxBootRetries()) {
                    throw new PalisadeException(
                            ErrorCode.DRIVER_FAILURE,
                            "vm " + id + " did not boot after " + (retries + 1) + " attempts ("
                                    + accelerator.kind().slug() + "): " + String.join(" / ", failures) + "; see "
                                    + paths.serialLog());
                }
                retries++;
                watchdogRetries.incrementAndGet();
                log.warn("boot watchdog: vm {} attempt {} failed ({}); killing and retrying ({} of {})", id, retries,
                        hang.getMessage(), retries, driver.config().maxBootRetries());
            }
        }
    }

    /** A boot that hung or whose guest died; worth retrying. */
    private static final class BootHang extends RuntimeException {
        BootHang(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * One boot attempt. {@code recovery} (a progress listener) marks the first boot of a restored data directory: see
     * {@link #bootForRestore}; null for ordinary boots.
     */
    private Map<String, String> bootOnce(InstanceSpec spec, GuestImage image, InstancePaths paths, Endpoint endpoint,
            ProgressListener recovery) {
        String id = spec.id();
        VmDriverConfig config = driver.config();
        VmFiles.rotate(paths.serialLog(), paths.previousSerialLog());
        // a cold boot changes the volume: any saved state no longer matches it and must never be resumed
        VmFiles.discardSavedState(paths);
        VmFiles.deleteQuietly(paths.memoryFile());
        VmFiles.createPrivateFile(paths.memoryFile());
        long spawn = System.nanoTime();
        Process process = driver.launcher().start(spec, image, paths,
                new QemuCommand.Memory(paths.memoryFile(), true), null);
        SerialConsole serial = new SerialConsole(paths.serialLog(), spawn);
        long deadline = spawn + config.bootTimeout().toNanos();
        // once PostgreSQL runs on a restored directory, its recovery gets the longer bound
        Duration recoveryBound = config.restoreTimeout().compareTo(config.bootTimeout()) < 0
                ? config.bootTimeout()
                : config.restoreTimeout();
        RecoveryWatch watch = recovery == null ? null : new RecoveryWatch(paths.qmpSocket(), RECOVERY_STALL, spawn);
        long nextProgress = spawn + RECOVERY_PROGRESS_INTERVAL.toNanos();
        // the early-boot hang (timer calibration) shows as no initramfs marker; catch it well before the overall bound
        long firstMarkerDeadline = spawn + Math.min(config.bootTimeout().toNanos() / 2, FIRST_MARKER_TIMEOUT.toNanos());
        long readyNanos;
        long nextFallbackProbe = spawn;
        while (true) {
            serial.poll();
            if (!process.isAlive()) {
                serial.poll();
                String why = "QEMU exited with code " + process.exitValue() + "; QEMU said: "
                        + Processes.tail(String.join("\n", Processes.tailFile(paths.qemuLog(), 5)), 3)
                        + "; guest console: " + serial.tail(5);
                driver.launcher().cleanupAfterFailure(id);
                if (!serial.seenAny()) {
                    // QEMU refused to start (bad arguments, missing file): retrying will not help
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "vm " + id + ": " + why);
                }
                if (recovery != null && serial.seen("postgres-started")) {
                    // e.g. FATAL: recovery ended before the configured recovery target was reached
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "PostgreSQL exited during recovery ("
                            + (serial.seen("postgres-exited") ? "the guest powered off" : why) + ")");
                }
                throw new BootHang(why);
            }
            long now = System.nanoTime();
            boolean recovering = recovery != null && serial.seen("postgres-started");
            if (recovering && !serial.seen("ready")) {
                if (watch.poll(now) && watch.stalled(now)) {
                    killForRetry(id, process);
                    throw new PalisadeException(ErrorCode.TIMEOUT, "recovery made no progress: no I/O on the data "
                            + "volume for " + watch.stallBound().toMinutes() + " min (" + watch.describe() + ")");
                }
                if (now > nextProgress) {
                    nextProgress = now + RECOVERY_PROGRESS_INTERVAL.toNanos();
                    recovery.phase("recovering: " + watch.describe() + " after "
                            + Duration.ofNanos(now - spawn).toSeconds() + " s");
                }
            }
            if (recovering && now > spawn + recoveryBound.toNanos()) {
                killForRetry(id, process);
                throw new PalisadeException(ErrorCode.TIMEOUT, "PostgreSQL did not finish recovery within "
                        + recoveryBound.toMinutes() + " min (vm.restore-timeout; phases " + serial.phases() + ", "
                        + watch.describe() + ")");
            }
            if (!serial.seen("initramfs") && now > firstMarkerDeadline) {
                killForRetry(id, process);
                throw new BootHang("no '" + SerialConsole.MARKER + "initramfs' within "
                        + Duration.ofNanos(firstMarkerDeadline - spawn).toSeconds() + " s; console: " + serial.tail(3));
            }
            if (!recovering && now > deadline) {
                killForRetry(id, process);
                throw new BootHang("PostgreSQL not ready within " + config.bootTimeout().toSeconds() + " s (phases "
                        + serial.phases() + "); console: " + serial.tail(3));
            }
            // only once the guest says "ready" (postmaster.pid, as pg_ctl -w): before that every probe makes the
            // postmaster fork a backend that answers "starting up", on the guest's one vCPU, which under TCG slows
            // PostgreSQL's own start (and during a recovery, hot_standby off, it would only load the guest); a cold
            // boot without the marker is probed after READY_MARKER_GRACE
            boolean probe = serial.seen("ready");
            if (!probe && recovery == null && serial.seen("postgres-started") && now >= nextFallbackProbe
                    && now - spawn > TimeUnit.MILLISECONDS.toNanos(serial.at("postgres-started"))
                            + READY_MARKER_GRACE.toNanos()) {
                probe = true;
                nextFallbackProbe = now + FALLBACK_PROBE_INTERVAL.toNanos();
            }
            if (probe && PgProbe.isReady(endpoint, PROBE_TIMEOUT)) {
                readyNanos = System.nanoTime();
                break;
            }
            Processes.sleep(Duration.ofMillis(25));
        }
        serial.poll();
        Map<String, String> details = new LinkedHashMap<>();
        details.put("accelerator", driver.accelerator().kind().slug());
        details.put("pid", Long.toString(process.pid()));
        details.put("vcpus", Integer.toString(spec.plan().cpu()));
        details.put("memory_mb", Integer.toString(spec.plan().memoryMb()));
        Map<String, Long> phases = serial.phases();
        for (String phase : SerialConsole.PHASES) {
            if (phases.containsKey(phase)) {
                details.put("boot_" + phase.replace('-', '_') + "_ms", Long.toString(phases.get(phase)));
            }
        }
        details.put("boot_pg_answers_ms", Long.toString((readyNanos - spawn) / 1_000_000));
        if (watch != null) {
            watch.poll(Long.MAX_VALUE);
            details.put("recovery_read_bytes", Long.toString(watch.readBytes()));
            details.put("recovery_written_bytes", Long.toString(watch.writtenBytes()));
        }
        log.info("vm {} booted ({}): {}", id, driver.accelerator().kind().slug(), details);
        return details;
    }

    private void killForRetry(String id, Process process) {
        process.destroyForcibly();
        try {
            process.waitFor(QemuProcesses.KILL_WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        driver.launcher().cleanupAfterFailure(id);
    }
}
