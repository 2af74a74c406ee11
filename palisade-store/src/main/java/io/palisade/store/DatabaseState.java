package io.palisade.store;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/** The lifecycle of a database, and the one place that says which transitions are legal. */
public enum DatabaseState {
    PROVISIONING,
    RUNNING,
    STOPPED,
    SUSPENDED,
    FAILED,
    DELETING;

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static DatabaseState fromWire(String value) {
        return valueOf(value.toUpperCase(Locale.ROOT));
    }

    public Set<DatabaseState> next() {
        return switch (this) {
            case PROVISIONING -> EnumSet.of(RUNNING, FAILED, DELETING);
            case RUNNING -> EnumSet.of(STOPPED, SUSPENDED, FAILED, DELETING, PROVISIONING);
            case STOPPED -> EnumSet.of(PROVISIONING, RUNNING, FAILED, DELETING);
            case SUSPENDED -> EnumSet.of(RUNNING, STOPPED, FAILED, DELETING);
            case FAILED -> EnumSet.of(PROVISIONING, RUNNING, STOPPED, DELETING);
            case DELETING -> EnumSet.of(DELETING);
        };
    }

    /** True for states a restart of palisade must not leave behind. */
    public boolean isTransitional() {
        return this == PROVISIONING || this == DELETING;
    }

    public void checkTransition(DatabaseState target, String id) {
        if (!next().contains(target)) {
            throw new PalisadeException(
                    ErrorCode.CONFLICT,
                    "database " + id + " is " + wireName() + " and cannot become " + target.wireName()
                            + "; allowed from " + wireName() + ": " + next().stream().map(DatabaseState::wireName).toList());
        }
    }
}
