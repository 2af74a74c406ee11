package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A finished base backup: restoring it needs the WAL from {@code start} to at least {@code end} (the backup's
 * consistency point).
 */
public record BaseBackupResult(Lsn start, int startTimeline, Lsn end, int endTimeline, List<Tablespace> tablespaces) {
    public BaseBackupResult {
        requireNonNull(start, "start is null");
        requireNonNull(end, "end is null");
        tablespaces = List.copyOf(requireNonNull(tablespaces, "tablespaces is null"));
    }

    /**
     * One tablespace of the backup: the main data directory has no oid and no location. {@code sizeKb} is sent with
     * the PROGRESS option.
     */
    public record Tablespace(Optional<Long> oid, Optional<String> location, OptionalLong sizeKb) {
        public Tablespace {
            requireNonNull(oid, "oid is null");
            requireNonNull(location, "location is null");
            requireNonNull(sizeKb, "sizeKb is null");
        }
    }
}
