package io.palisade.vmm;

import java.util.Map;
import java.util.Optional;

/**
 * How the clock of a restored guest (clone or resume) was set after the restore, reported as
 * {@code details.clock_sync}; see {@link GuestClock}. A cold boot reports none (the guest read its clock at boot).
 * Immutable.
 */
public enum ClockSync implements DetailValue {
    /** Over the platform's control port (virtio-serial), acknowledged by the guest's root helper. */
    SERIAL,
    /** Not acknowledged over the control port (yet); the caller then resyncs over SQL and reports {@link #SQL}. */
    PENDING,
    /** Over the management connection (the image's resync FIFO): images without the control port. */
    SQL;

    /** The key of this value in {@code RunningInstance.details}. */
    public static final String KEY = "clock_sync";

    @Override
    public String key() {
        return KEY;
    }

    /** The clock sync a details map reports; empty when it has none (or an unknown one). */
    public static Optional<ClockSync> from(Map<String, String> details) {
        return DetailValue.from(ClockSync.class, details);
    }

    @Override
    public String toString() {
        return wireName();
    }
}
