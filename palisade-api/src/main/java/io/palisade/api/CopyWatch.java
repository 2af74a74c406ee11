package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.logical.CopyProgress;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * Whether a move's copy can still finish. PostgreSQL retries a failing initial copy or apply on the target for ever
 * (every few seconds), e.g. on a full disk, and a server whose postmaster died takes the copy's connections with it;
 * neither must leave a move in {@code copying} for ever. A copy is stalled when the target counted errors since it last
 * advanced (bytes copied, tables ready, or lag below its lowest so far) and it has not advanced for {@link #STALL}. The
 * reason is read from the instance's log: its last PANIC, else ERROR, else FATAL line. Not thread-safe: a move's thread
 * uses it alone.
 */
final class CopyWatch {
    static final Duration STALL = Duration.ofSeconds(30);
    /** How much of an instance's log {@link #lastProblem} is given. */
    static final int LOG_LINES = 200;

    private final Duration stall;
    private long copied = -1;
    private long ready = -1;
    private long lowestLag = Long.MAX_VALUE;
    private long errorsWhenAdvanced;
    private long advancedAt;

    CopyWatch(Duration stall, long nowNanos) {
        this.stall = requireNonNull(stall, "stall is null");
        this.advancedAt = nowNanos;
    }

    /** Notes a reading of the copy's progress; true when the copy is stalled (see the class comment). */
    boolean stalled(CopyProgress progress, long nowNanos) {
        long readyNow = progress.tables().values().stream().filter(s -> s == CopyProgress.TableState.READY).count();
        boolean advanced = progress.copiedBytes() > copied || readyNow > ready || progress.lagBytes() < lowestLag;
        copied = Math.max(copied, progress.copiedBytes());
        ready = Math.max(ready, readyNow);
        lowestLag = Math.min(lowestLag, progress.lagBytes());
        if (advanced || progress.errors() < errorsWhenAdvanced) {
            // a restarted target counts its errors afresh
            errorsWhenAdvanced = progress.errors();
            advancedAt = nowNanos;
            return false;
        }
        return progress.errors() > errorsWhenAdvanced && nowNanos - advancedAt > stall.toNanos();
    }

    /** How many errors the target counted since the copy last advanced. */
    long newErrors(CopyProgress progress) {
        return progress.errors() - errorsWhenAdvanced;
    }

    /** The most telling problem in a PostgreSQL log's tail: its last PANIC, else ERROR, else FATAL message. */
    static Optional<String> lastProblem(List<String> logTail) {
        for (String level : List.of("PANIC:", "ERROR:", "FATAL:")) {
            for (String line : logTail.reversed()) {
                int at = line.indexOf(level);
                if (at >= 0) {
                    return Optional.of(line.substring(at).replaceAll("\\s+", " ").strip());
                }
            }
        }
        return Optional.empty();
    }
}
