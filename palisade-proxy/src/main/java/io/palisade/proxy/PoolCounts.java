package io.palisade.proxy;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the {@link BackendPool} holds of one database or of one server: the connections pooled there (parked or being
 * reset), and the parked connections it gave back (ended to make room: give-way, a refused login, eviction), counted
 * when each give-back starts and again when the server has let the connection go. A backend login takes a
 * {@link Mark} before it starts; if the server refuses it as too many, {@link #mayFreeSlots} says whether giving back
 * can have made room since. Thread-safe (atomics).
 */
final class PoolCounts {
    /** Nothing pooled and nothing given back: a database or server the pool has not seen. */
    static final PoolCounts NONE = new PoolCounts();

    /** Where a backend login stood when it began: give-backs finished by then, of its database and of its server. */
    record Mark(long database, long server) {}

    private final AtomicInteger pooled = new AtomicInteger();
    private final AtomicLong givingBackStarted = new AtomicLong();
    private final AtomicLong givingBackFinished = new AtomicLong();

    int pooled() {
        return pooled.get();
    }

    /** Counts one more connection pooled, unless {@code bound} are already: false then. */
    boolean pool(int bound) {
        int now;
        do {
            now = pooled.get();
            if (now >= bound) {
                return false;
            }
        } while (!pooled.compareAndSet(now, now + 1));
        return true;
    }

    void pool() {
        pooled.incrementAndGet();
    }

    void unpool() {
        pooled.decrementAndGet();
    }

    /** A pooled connection is being given back: call before it leaves the pooled count (see {@link #mayFreeSlots}). */
    void givingBack() {
        givingBackStarted.incrementAndGet();
    }

    /** The server has let a connection given back go. */
    void givenBack() {
        givingBackFinished.incrementAndGet();
    }

    static Mark mark(PoolCounts database, PoolCounts server) {
        return new Mark(database.givingBackFinished.get(), server.givingBackFinished.get());
    }

    /**
     * Whether giving back may free what a login refused as too many ({@code 53300}) lacked: connections that may hold
     * those slots (the database's; with {@code serverWide}, the whole server was full, any on that server) are
     * pooled, or a give-back of them was under way when the login began ({@code since}) or started after. The second
     * half is two logins refused at once: the first one's retry took what was parked, and the server refused the
     * second one before it had let those go. Pooled counts are read before give-backs: a give-back is counted before
     * its connection leaves the pooled count, so one of the two always shows it.
     */
    static boolean mayFreeSlots(PoolCounts database, PoolCounts server, boolean serverWide, Mark since) {
        if (database.pooled() > 0 || (serverWide && server.pooled() > 0)) {
            return true;
        }
        return serverWide
                ? server.givingBackStarted.get() > since.server()
                : database.givingBackStarted.get() > since.database();
    }
}
