package io.palisade.store;

import io.palisade.spi.PalisadeException;

/**
 * When a commit is acknowledged relative to the archive: {@code async} (the archive follows within about a second) or
 * {@code sync} (the commit waits until the archive has flushed it: RPO 0, at a latency cost).
 */
public enum Durability {
    ASYNC,
    SYNC;

    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static Durability fromWire(String value) {
        for (Durability durability : values()) {
            if (durability.wireName().equals(value)) {
                return durability;
            }
        }
        throw PalisadeException.invalid("durability must be \"async\" or \"sync\", got '" + value + "'");
    }
}
