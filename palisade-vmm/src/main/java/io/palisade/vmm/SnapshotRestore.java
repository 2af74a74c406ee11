package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.PgProbe;
import io.palisade.host.Processes;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Starts a VM from a saved state instead of booting it: a new QEMU waiting for the state, the state streamed in, the
 * guest continued, its clock resynced over the control port while its readiness is awaited ({@link
 * RestoreReadiness}). Used for clones of a template snapshot and for resumes of a suspended VM. Thread-safe for
 * different ids (no state of its own); any failure kills the QEMU it started.
 */
final class SnapshotRestore {
    private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(1);
    private static final Duration RESTORE_TIMEOUT = Duration.ofSeconds(30);
    /**
     * How long a guest's acknowledgement may take to count as readiness: it comes ~0.05–0.1 s after {@code cont}, later
     * on a loaded host; the helper's own timeout ({@link GuestClock}) is the same second.
     */
    private static final Duration ACK_GRACE = Duration.ofSeconds(1);

    /** A restored, running VM and how its clock was synced (serial, or pending: the caller resyncs over SQL). */
    record Restored(BootWatchdog.Boot boot, ClockSync clockSync) {
        Restored {
            requireNonNull(boot, "boot is null");
            requireNonNull(clockSync, "clockSync is null");
        }
    }

    /**
     * Whether the restored guest's PostgreSQL answers at an endpoint: false while it does not (yet); throws when it
     * answers in a way that rules the restore out.
     */
    @FunctionalInterface
    interface Answer {
        boolean answers(Endpoint endpoint);

        /** What this answer is reported as; a caller's own login unless it is {@link #PROBE}. */
        default RestoreReadiness readiness() {
            return RestoreReadiness.LOGIN;
        }
    }

    /** A PostgreSQL protocol probe ({@link PgProbe}): answers once the server asks for authentication. */
    static final Answer PROBE = new Answer() {
        @Override
        public boolean answers(Endpoint endpoint) {
            return PgProbe.isReady(endpoint, PROBE_TIMEOUT);
        }

        @Override
        public RestoreReadiness readiness() {
            return RestoreReadiness.PROBE;
        }
    };

    private final VmDriver driver;

    SnapshotRestore(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    /**
     * Restores a clone of a template: its RAM a private copy-on-write mapping of the template's memory file. {@code
     * answer} tells when PostgreSQL answers: {@link #PROBE}, or the caller's own management login (one backend fewer
     * to start in the guest).
     */
    Restored cloneFrom(InstanceSpec spec, GuestImage image, InstancePaths paths, TemplateCache.Template template,
            Answer answer) {
        String id = spec.id();
        long networkStart = System.nanoTime();
        Endpoint endpoint = ensureNetwork(id);
        long networkMs = (System.nanoTime() - networkStart) / 1_000_000;
        Restored restored = restoreOnce(spec, image, paths, endpoint,
                new QemuCommand.Memory(template.memory(), false), template.state(), true, false, false, answer);
        Map<String, String> details = restored.boot().details();
        CreatePath.CLONE.putInto(details);
        details.put("template", template.dir().getFileName().toString());
        details.put("network_ms", Long.toString(networkMs));
        return restored;
    }

    /** The network of an instance: its slot, and its namespace created unless it is still there from a suspend. */
    Endpoint ensureNetwork(String id) {
        NetworkPool.Slot slot = driver.networkPool().allocate(id);
        VmNetwork network = driver.network(id);
        if (!Files.exists(Path.of("/run/netns", network.namespace()))
                || !Files.exists(Path.of("/sys/class/net", network.hostVeth()))) {
            network.create(slot);
        }
        return slot.postgresEndpoint();
    }

    /**
     * Whether the guest's helper acknowledged the clock step within {@link #ACK_GRACE}; if not, PostgreSQL is probed
     * while the acknowledgement may still come (the clock sync is joined later either way).
     */
    private static boolean acknowledgedWithinGrace(CompletableFuture<ClockSync> clock) {
        try {
            return clock.get(ACK_GRACE.toMillis(), TimeUnit.MILLISECONDS) == ClockSync.SERIAL;
        } catch (TimeoutException | ExecutionException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * Starts QEMU waiting for a saved state, streams it in, deletes the state's file when {@code consume} (a state is
     * resumed at most once), continues the guest and waits until it is ready: when {@code savedWhilePostgresAnswered},
     * until the guest acknowledges the clock step over the control port ({@link RestoreReadiness#GUEST_ACK});
     * otherwise, or without that acknowledgement within {@link #ACK_GRACE}, until PostgreSQL answers a probe. Any
     * failure kills that QEMU and throws.
     */
    Restored restoreOnce(InstanceSpec spec, GuestImage image, InstancePaths paths, Endpoint endpoint,
            QemuCommand.Memory memory, Path state, boolean ignoreShared, boolean consume,
            boolean savedWhilePostgresAnswered) {
        return restoreOnce(spec, image, paths, endpoint, memory, state, ignoreShared, consume,
                savedWhilePostgresAnswered, PROBE);
    }

    /** As above, with PostgreSQL's first answer (when it is asked) told by {@code answer}. */
    private Restored restoreOnce(InstanceSpec spec, GuestImage image, InstancePaths paths, Endpoint endpoint,
            QemuCommand.Memory memory, Path state, boolean ignoreShared, boolean consume,
            boolean savedWhilePostgresAnswered, Answer answer) {
        requireNonNull(answer, "answer is null");
        String id = spec.id();
        VmFiles.rotate(paths.serialLog(), paths.previousSerialLog());
        VmFiles.deleteQuietly(paths.incomingSocket());
        long spawn = System.nanoTime();
        Process process = driver.launcher().start(spec, image, paths, memory, paths.incomingSocket());
        long deadline = spawn + RESTORE_TIMEOUT.toNanos();
        Qmp qmp = null;
        try {
            qmp = QemuLauncher.awaitQmp(process, paths, deadline);
            long qmpNanos = System.nanoTime();
            long restoreMs = Migration.restore(qmp, paths.incomingSocket(), state, ignoreShared, RESTORE_TIMEOUT);
            if (consume) {
                VmFiles.deleteQuietly(state); // a suspended instance's own state: resumed at most once
                VmFiles.deleteQuietly(paths.stateModeFile());
            }
            qmp.execute("cont", Map.of(), Duration.ofSeconds(5));
            long contNanos = System.nanoTime();
            qmp.close();
            qmp = null;
            // the clock resync (guest helper) and PostgreSQL's first answer overlap
            CompletableFuture<ClockSync> clock = new CompletableFuture<>();
            long[] clockNanos = new long[1];
            Thread.ofVirtual().name("vm-resync-" + id).start(() -> {
                ClockSync sync = GuestClock.resyncOverSerial(paths);
                clockNanos[0] = System.nanoTime();
                clock.complete(sync);
            });
            RestoreReadiness readiness = answer.readiness();
            if (savedWhilePostgresAnswered && acknowledgedWithinGrace(clock)) {
                readiness = RestoreReadiness.GUEST_ACK;
            }
            while (readiness != RestoreReadiness.GUEST_ACK && !answer.answers(endpoint)) {
                if (!process.isAlive()) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                            "QEMU exited after the restore with code " + process.exitValue());
                }
                if (System.nanoTime() > deadline) {
                    throw new PalisadeException(ErrorCode.TIMEOUT, "PostgreSQL did not answer after the restore");
                }
                Processes.sleep(Duration.ofMillis(5));
            }
            long ready = System.nanoTime();
            if (readiness == RestoreReadiness.GUEST_ACK) {
                ResumeCheck.start(id, process.toHandle(), endpoint);
            }
            ClockSync clockSync = clock.join(); // bounded by the serial acknowledgement timeout
            Map<String, String> details = new LinkedHashMap<>();
            details.put("accelerator", driver.accelerator().kind().slug());
            details.put("pid", Long.toString(process.pid()));
            details.put("vcpus", Integer.toString(spec.plan().cpu()));
            details.put("memory_mb", Integer.toString(spec.plan().memoryMb()));
            details.put("restore_qmp_ms", Long.toString((qmpNanos - spawn) / 1_000_000));
            details.put("restore_state_ms", Long.toString(restoreMs));
            details.put("restore_cont_ms", Long.toString((contNanos - spawn) / 1_000_000));
            details.put("restore_ready_ms", Long.toString((ready - spawn) / 1_000_000));
            if (readiness != RestoreReadiness.GUEST_ACK) {
                details.put("restore_pg_answers_ms", Long.toString((ready - spawn) / 1_000_000));
            }
            readiness.putInto(details);
            details.put("restore_clock_ms", Long.toString((clockNanos[0] - spawn) / 1_000_000));
            clockSync.putInto(details);
            details.put("netns", driver.network(id).namespace());
            details.put("endpoint", endpoint.toString());
            return new Restored(new BootWatchdog.Boot(endpoint, details), clockSync);
        } catch (RuntimeException e) {
            if (qmp != null) {
                qmp.close();
            }
            driver.launcher().abandon(id);
            throw e;
        }
    }
}
