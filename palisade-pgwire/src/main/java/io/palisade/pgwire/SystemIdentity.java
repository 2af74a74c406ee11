package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

/** What IDENTIFY_SYSTEM reports: the cluster's system identifier, its current timeline and WAL flush position. */
public record SystemIdentity(String systemId, int timeline, Lsn xlogPos) {
    public SystemIdentity {
        requireNonNull(systemId, "systemId is null");
        requireNonNull(xlogPos, "xlogPos is null");
        if (timeline < 1) {
            throw new IllegalArgumentException("timeline must be at least 1: " + timeline);
        }
    }
}
