package io.palisade.vmm;

import java.util.Map;
import java.util.Optional;

/**
 * What told a restore (clone or resume) that the restored guest is ready, reported as {@code
 * details.restore_ready_by}; see {@link SnapshotRestore}. Immutable.
 */
public enum RestoreReadiness implements DetailValue {
    /**
     * The guest's root helper acknowledged the clock step over the control port, and the state was saved while
     * PostgreSQL answered: the guest runs, and its PostgreSQL is the one that answered, continued with its listening
     * socket. It is not asked before the call returns; the caller's first login is its first answer (a backend the
     * guest does not fork for a probe beside it). {@link ResumeCheck} asks 2 s later.
     */
    GUEST_ACK,
    /** PostgreSQL answered a protocol probe ({@link io.palisade.host.PgProbe}). */
    PROBE,
    /** PostgreSQL answered the caller's own management login (a clone setting its credentials). */
    LOGIN;

    /** The key of this value in {@code RunningInstance.details}. */
    public static final String KEY = "restore_ready_by";

    @Override
    public String key() {
        return KEY;
    }

    /** The readiness a details map reports; empty when it has none (or an unknown one). */
    public static Optional<RestoreReadiness> from(Map<String, String> details) {
        return DetailValue.from(RestoreReadiness.class, details);
    }

    @Override
    public String toString() {
        return wireName();
    }
}
