package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import java.util.Optional;
import java.util.OptionalInt;

/**
 * What READ_REPLICATION_SLOT reports for an existing slot: its type ({@code physical} or {@code logical}) and, once
 * it holds WAL, the oldest position it keeps and that position's timeline.
 */
public record SlotInfo(String slotType, Optional<Lsn> restartLsn, OptionalInt restartTimeline) {
    public SlotInfo {
        requireNonNull(slotType, "slotType is null");
        requireNonNull(restartLsn, "restartLsn is null");
        requireNonNull(restartTimeline, "restartTimeline is null");
    }
}
