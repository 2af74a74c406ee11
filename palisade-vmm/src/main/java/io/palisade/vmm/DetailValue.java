package io.palisade.vmm;

import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * A typed value the vm rung reports under one key of {@code RunningInstance.details} ({@link CreatePath},
 * {@link ResumePath}, {@link ClockSync}): written with {@link #putInto}, read back with {@link #from}. Implementations
 * are immutable enums whose constants are named as their values, in upper case.
 */
public interface DetailValue {
    /** The key of this kind of value in the details map. */
    String key();

    /** The value as it appears in the details map and logs: the constant's name in lower case. */
    default String wireName() {
        return ((Enum<?>) this).name().toLowerCase(Locale.ROOT);
    }

    /** Writes this value into {@code details} under {@link #key()}. */
    default void putInto(Map<String, String> details) {
        details.put(key(), wireName());
    }

    /** The value of kind {@code type} a details map reports; empty when it has none (or an unknown one). */
    static <E extends Enum<E> & DetailValue> Optional<E> from(Class<E> type, Map<String, String> details) {
        return Arrays.stream(type.getEnumConstants())
                .filter(v -> v.wireName().equals(details.get(v.key())))
                .findFirst();
    }
}
