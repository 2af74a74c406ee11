package io.palisade.store;

import java.util.Locale;

/**
 * How far a move between rungs got. Before {@link #SWITCHED} the tenant's truth is the source instance and a failure or
 * a restart of palisade undoes the move; from {@link #SWITCHED} on the database record names the target and the move is
 * finished, whatever happens.
 */
public enum MovePhase {
    /** Checks passed; the target instance is being created. */
    PREPARING(false),
    /** Schema replayed on the target; rows copied by logical replication while the tenant writes. */
    COPYING(false),
    /** New connections held, the source's sessions ended, the last changes and sequences carried over. */
    CUTOVER(false),
    /** The database record names the target; the source instance is being removed. */
    SWITCHED(false),
    /** The tenant runs on the target; nothing of the source is left. */
    DONE(true),
    /** Stopped on request before the cutover; the tenant is where it was. */
    CANCELLED(true),
    /** Failed (or palisade stopped) before the cutover; the tenant is where it was. */
    FAILED(true);

    private final boolean finished;

    MovePhase(boolean finished) {
        this.finished = finished;
    }

    public boolean finished() {
        return finished;
    }

    /** Whether the database record already names the target. */
    public boolean switched() {
        return this == SWITCHED || this == DONE;
    }

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static MovePhase fromWire(String value) {
        return valueOf(value.toUpperCase(Locale.ROOT));
    }
}
