package io.palisade.vmm;

import java.util.Map;
import java.util.Optional;

/**
 * How a suspended vm database came back, reported as {@code details.resume_path} of the {@code RunningInstance} that
 * {@code resume} returns. Immutable.
 */
public enum ResumePath implements DetailValue {
    /** From its saved device state (and memory file): the same guest continues. */
    RESTORE,
    /** A cold boot from its volume (no usable state; PostgreSQL crash recovery). */
    COLD;

    /** The key of this value in {@code RunningInstance.details}. */
    public static final String KEY = "resume_path";

    @Override
    public String key() {
        return KEY;
    }

    /** The resume path a details map reports; empty when it has none (or an unknown one). */
    public static Optional<ResumePath> from(Map<String, String> details) {
        return DetailValue.from(ResumePath.class, details);
    }

    @Override
    public String toString() {
        return wireName();
    }
}
