package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.PgProbe;
import io.palisade.host.Processes;
import io.palisade.spi.Endpoint;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The check behind a resume that took the guest's acknowledgement for readiness ({@link RestoreReadiness#GUEST_ACK}):
 * once the waking client has had its login ({@link #FIRST_DELAY}), PostgreSQL must answer a probe at all (an
 * authentication request or any error, "starting up" included) before {@link #PATIENCE} has passed; a probe still
 * under way then may take up to 6 s more. What it catches is a guest that never answers — a postmaster hung or gone,
 * a network path the restore broke — not one that answers with errors. Such a QEMU is ended as a crash would end it,
 * and the control plane's reconciler restarts the database from its volume (the probe that used to run before the
 * resume returned would have made it cold boot instead). Runs on a virtual thread; stops once that QEMU process is
 * gone (a suspend, stop or delete since) and never touches another. Not kept across a restart of palisade.
 */
final class ResumeCheck {
    static final Duration FIRST_DELAY = Duration.ofSeconds(2);
    static final Duration PATIENCE = Duration.ofSeconds(30);
    private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(3);
    private static final Duration INTERVAL = Duration.ofSeconds(2);
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);

    private ResumeCheck() {}

    /** Starts the check of the QEMU {@code qemu} that runs instance {@code id}, reachable at {@code endpoint}. */
    static void start(String id, ProcessHandle qemu, Endpoint endpoint) {
        requireNonNull(id, "id is null");
        requireNonNull(qemu, "qemu is null");
        requireNonNull(endpoint, "endpoint is null");
        Thread.ofVirtual().name("vm-resume-check-" + id).start(() -> run(id, qemu, endpoint));
    }

    private static void run(String id, ProcessHandle qemu, Endpoint endpoint) {
        Processes.sleep(FIRST_DELAY);
        long deadline = System.nanoTime() + PATIENCE.toNanos();
        while (qemu.isAlive()) {
            if (PgProbe.answers(endpoint, PROBE_TIMEOUT)) {
                return;
            }
            if (System.nanoTime() > deadline) {
                if (qemu.isAlive()) {
                    log.error("vm {}: PostgreSQL has not answered for {} s since its resume from a saved state;"
                            + " ending its QEMU (pid {}) as a crash would, for a restart from its volume", id,
                            FIRST_DELAY.plus(PATIENCE).toSeconds(), qemu.pid());
                    qemu.destroyForcibly();
                }
                return;
            }
            Processes.sleep(INTERVAL);
        }
    }
}
