package io.palisade.proxy;

import java.util.concurrent.ConcurrentHashMap;

/** At most one warning per key per interval. Thread-safe: a concurrent map of the last warning time per key. */
final class WarningLimiter {
    private final long intervalNanos;
    private final ConcurrentHashMap<String, Long> last = new ConcurrentHashMap<>();

    WarningLimiter(long intervalNanos) {
        this.intervalNanos = intervalNanos;
    }

    boolean shouldWarn(String key) {
        long now = System.nanoTime();
        boolean[] warn = {false};
        last.compute(key, (k, previous) -> {
            if (previous == null || now - previous >= intervalNanos) {
                warn[0] = true;
                return now;
            }
            return previous;
        });
        if (last.size() > 10_000) {
            last.clear();
        }
        return warn[0];
    }
}
