package io.palisade.vmm;

import java.util.Arrays;
import java.util.Map;
import java.util.Optional;

/**
 * How a suspended vm database came back, reported as {@code details.resume_path} of the {@code RunningInstance} that
 * {@code resume} returns. Immutable.
 */
public enum ResumePath {
    /** From its saved device state (and memory file): the same guest continues. */
    RESTORE("restore"),
    /** A cold boot from its volume (no usable state; PostgreSQL crash recovery). */
    COLD("cold");

    /** The key of this value in {@code RunningInstance.details}. */
    public static final String KEY = "resume_path";

    private final String wireName;

    ResumePath(String wireName) {
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

    /** The resume path a details map reports; empty when it has none (or an unknown one). */
    public static Optional<ResumePath> from(Map<String, String> details) {
        String value = details.get(KEY);
        return Arrays.stream(values()).filter(v -> v.wireName.equals(value)).findFirst();
    }

    @Override
    public String toString() {
        return wireName;
    }
}
