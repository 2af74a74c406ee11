package io.palisade.vmm;

import java.util.Map;
import java.util.Optional;

/**
 * How a vm database was created, reported as {@code details.create_path} of its {@code RunningInstance}. Immutable.
 */
public enum CreatePath implements DetailValue {
    /** A clone of a template snapshot (restored state, private mapping of the template's memory file). */
    CLONE,
    /** A cold boot from a copy of the image's template volume (fallback, or clones disabled). */
    COLD,
    /** A cold boot through recovery of a restored data directory ({@code provisionFrom}). */
    RESTORE;

    /** The key of this value in {@code RunningInstance.details}. */
    public static final String KEY = "create_path";

    @Override
    public String key() {
        return KEY;
    }

    /** The create path a details map reports; empty when it has none (or an unknown one). */
    public static Optional<CreatePath> from(Map<String, String> details) {
        return DetailValue.from(CreatePath.class, details);
    }

    @Override
    public String toString() {
        return wireName();
    }
}
