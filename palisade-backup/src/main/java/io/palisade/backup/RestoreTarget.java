package io.palisade.backup;

import static java.util.Objects.requireNonNull;

import io.palisade.pgwire.Lsn;
import java.time.Instant;

/** Where a restore stops: the latest archived moment, a point in time, or a WAL position. */
public sealed interface RestoreTarget {
    /** Short text for records and logs, e.g. {@code latest}, {@code time 2026-12-01T10:00:00Z}. */
    String describe();

    /** The inverse of {@link #describe()}. */
    static RestoreTarget parse(String described) {
        if (described.equals("latest")) {
            return new Latest();
        }
        if (described.startsWith("time ")) {
            return new AtTime(java.time.Instant.parse(described.substring(5)));
        }
        if (described.startsWith("lsn ")) {
            return new AtLsn(Lsn.parse(described.substring(4)));
        }
        throw new IllegalArgumentException("unknown restore target '" + described + "'");
    }

    record Latest() implements RestoreTarget {
        @Override
        public String describe() {
            return "latest";
        }
    }

    record AtTime(Instant time) implements RestoreTarget {
        public AtTime {
            requireNonNull(time, "time is null");
        }

        @Override
        public String describe() {
            return "time " + time;
        }
    }

    record AtLsn(Lsn lsn) implements RestoreTarget {
        public AtLsn {
            requireNonNull(lsn, "lsn is null");
        }

        @Override
        public String describe() {
            return "lsn " + lsn;
        }
    }
}
