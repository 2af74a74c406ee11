package io.palisade.vmm;

import java.util.Arrays;
import java.util.Map;
import java.util.Optional;

/**
 * How the clock of a restored guest (clone or resume) was set after the restore, reported as
 * {@code details.clock_sync}; see {@link GuestClock}. A cold boot reports none (the guest read its clock at boot).
 * Immutable.
 */
public enum ClockSync {
    /** Over the platform's control port (virtio-serial), acknowledged by the guest's root helper. */
    SERIAL("serial"),
    /** Not acknowledged over the control port (yet); the caller then resyncs over SQL and reports {@link #SQL}. */
    PENDING("pending"),
    /** Over the management connection (the image's resync FIFO): images without the control port. */
    SQL("sql");

    /** The key of this value in {@code RunningInstance.details}. */
    public static final String KEY = "clock_sync";

    private final String wireName;

    ClockSync(String wireName) {
        this.wireName = wireName;
    }

    /** The value as it appears in the details map and logs. */
    public String wireName() {
        return wireName;
    }

    /** Writes this value into {@code details} under {@link #KEY}. */
    public void putInto(Map<String, String> details) {
        details.put(KEY, wireName);
    }

    /** The clock sync a details map reports; empty when it has none (or an unknown one). */
    public static Optional<ClockSync> from(Map<String, String> details) {
        String value = details.get(KEY);
        return Arrays.stream(values()).filter(v -> v.wireName.equals(value)).findFirst();
    }

    @Override
    public String toString() {
        return wireName;
    }
}
