package io.palisade.broker;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Counts things the broker holds at once (HTTP requests in flight, WebSocket sessions) against a total cap and a cap
 * per database. The total is taken on arrival; a database's share only once the caller is authenticated, so callers
 * without the password cannot use it up. Thread-safe.
 */
final class Admission {
    private final int maxTotal;
    private final int maxPerDatabase;
    private final AtomicInteger total = new AtomicInteger();
    private final Map<String, AtomicInteger> perDatabase = new ConcurrentHashMap<>();

    Admission(int maxTotal, int maxPerDatabase) {
        this.maxTotal = maxTotal;
        this.maxPerDatabase = maxPerDatabase;
    }

    /** Takes one of the total; false (nothing taken) when all are in use. Give back with {@link #leave()}. */
    boolean enter() {
        if (total.incrementAndGet() > maxTotal) {
            total.decrementAndGet();
            return false;
        }
        return true;
    }

    void leave() {
        total.decrementAndGet();
    }

    /** Takes one of a database's share; false (nothing taken) when all are in use. Give back with {@link #leave}. */
    boolean enter(String databaseId) {
        boolean[] admitted = new boolean[1];
        perDatabase.compute(databaseId, (id, count) -> {
            AtomicInteger value = count == null ? new AtomicInteger() : count;
            if (value.get() < maxPerDatabase) {
                value.incrementAndGet();
                admitted[0] = true;
            }
            return value.get() == 0 ? null : value;
        });
        return admitted[0];
    }

    void leave(String databaseId) {
        perDatabase.computeIfPresent(databaseId, (id, count) -> count.decrementAndGet() <= 0 ? null : count);
    }

    int total() {
        return total.get();
    }

    int of(String databaseId) {
        AtomicInteger count = perDatabase.get(databaseId);
        return count == null ? 0 : count.get();
    }
}
