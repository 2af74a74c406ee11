package io.palisade.api;

import io.palisade.logical.CopyProgress;
import java.time.Duration;
import java.util.ArrayDeque;

/**
 * When a move's cutover may start: the tenant's writes are held during the cutover while the target applies what it
 * has not yet, so the cutover starts only when that rest is small, by bytes or by time at the rate the target is seen to
 * apply. The pause budget starts at {@value #START_BUDGET_MILLIS} ms and doubles for every
 * {@value #DOUBLING_SECONDS} s the copy stays above it, up to {@value #MAX_BUDGET_MILLIS} ms; a tenant writing faster
 * than the target applies never gets below it and the move waits in {@code copying} (its detail says so) until the
 * writes slow down or the move is cancelled. The rate is measured over the last {@value #WINDOW_SECONDS} s of the
 * slot's confirmed position. Not thread-safe: one move's thread.
 */
final class CutoverGate {
    static final long SMALL_LAG_BYTES = 128L << 10;
    static final long START_BUDGET_MILLIS = 500;
    static final long MAX_BUDGET_MILLIS = 4_000;
    static final long DOUBLING_SECONDS = 10;
    static final long WINDOW_SECONDS = 10;

    private record Sample(long nanos, long confirmed) {}

    private final ArrayDeque<Sample> window = new ArrayDeque<>();
    private long copiedSince;
    private long lastLag;
    private double rate = -1;

    /** Takes one progress report at {@code nowNanos}; true when the cutover may start. */
    boolean ready(CopyProgress progress, long nowNanos) {
        lastLag = progress.lagBytes();
        if (progress.confirmedLsn() > 0) {
            window.addLast(new Sample(nowNanos, progress.confirmedLsn()));
            while (nowNanos - window.getFirst().nanos() > Duration.ofSeconds(WINDOW_SECONDS).toNanos()) {
                window.removeFirst();
            }
            Sample first = window.getFirst();
            long span = nowNanos - first.nanos();
            rate = span >= Duration.ofSeconds(2).toNanos()
                    ? (progress.confirmedLsn() - first.confirmed()) * 1e9 / span : -1;
        }
        if (!progress.copied()) {
            copiedSince = 0;
            return false;
        }
        copiedSince = copiedSince == 0 ? nowNanos : copiedSince;
        return lastLag <= SMALL_LAG_BYTES || rate > 0 && lastLag <= rate * budget(nowNanos).toMillis() / 1000.0;
    }

    /** How long the held cutover may wait for the target to catch up: ample for the budget, bounded. */
    Duration catchUpBound(long nowNanos) {
        return Duration.ofSeconds(10).plus(budget(nowNanos).multipliedBy(4));
    }

    /** The pause the cutover may cause now. */
    Duration budget(long nowNanos) {
        long doublings = copiedSince == 0 ? 0
                : Math.min(10, (nowNanos - copiedSince) / Duration.ofSeconds(DOUBLING_SECONDS).toNanos());
        return Duration.ofMillis(Math.min(MAX_BUDGET_MILLIS, START_BUDGET_MILLIS << doublings));
    }

    /** For the move's detail while it waits: how far behind the target is and how fast it applies. */
    String describe(long nowNanos) {
        return "caught up to " + lastLag / 1024 + " KiB of WAL"
                + (rate < 0 ? "" : "; the target applies " + (long) (rate / 1024) + " KiB/s")
                + "; the cutover starts when the rest takes at most " + budget(nowNanos).toMillis() + " ms";
    }
}
