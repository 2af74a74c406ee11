package io.palisade.proxy;

import java.net.InetAddress;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Counts client connections in their two lives: not yet authenticated (capped in total and per source address, so
 * one host cannot hold every pre-authentication seat) and authenticated (capped in total). A connection holds a
 * {@link Ticket}; leaving is idempotent. Thread-safe: lock-free counters and a concurrent map of per-source counts
 * whose entries go away at zero.
 */
final class PreAuthLimits {
    private final int maxUnauthenticated;
    private final int maxPerSource;
    private final int maxAuthenticated;
    private final AtomicInteger unauthenticated = new AtomicInteger();
    private final AtomicInteger authenticated = new AtomicInteger();
    private final ConcurrentHashMap<InetAddress, Integer> bySource = new ConcurrentHashMap<>();

    PreAuthLimits(int maxUnauthenticated, int maxPerSource, int maxAuthenticated) {
        this.maxUnauthenticated = maxUnauthenticated;
        this.maxPerSource = maxPerSource;
        this.maxAuthenticated = maxAuthenticated;
    }

    /** One connection's place: first unauthenticated, then perhaps authenticated. */
    final class Ticket {
        private final InetAddress source;
        private final AtomicBoolean unauthenticatedHeld = new AtomicBoolean(true);
        private final AtomicBoolean authenticatedHeld = new AtomicBoolean();

        private Ticket(InetAddress source) {
            this.source = source;
        }

        /**
         * Moves the connection from the unauthenticated to the authenticated count; false (nothing held any more but
         * the unauthenticated seat, which {@link #leave} frees) when the authenticated cap is reached.
         */
        boolean authenticate() {
            if (authenticatedHeld.get()) {
                return true;
            }
            if (authenticated.incrementAndGet() > maxAuthenticated) {
                authenticated.decrementAndGet();
                return false;
            }
            authenticatedHeld.set(true);
            leaveUnauthenticated();
            return true;
        }

        /** Frees whatever the connection holds. Idempotent. */
        void leave() {
            leaveUnauthenticated();
            if (authenticatedHeld.compareAndSet(true, false)) {
                authenticated.decrementAndGet();
            }
        }

        private void leaveUnauthenticated() {
            if (unauthenticatedHeld.compareAndSet(true, false)) {
                unauthenticated.decrementAndGet();
                bySource.computeIfPresent(source, (address, count) -> count <= 1 ? null : count - 1);
            }
        }
    }

    /**
     * The key a source is counted under: the IPv4 address, or the IPv6 /64 (one subscriber's prefix; counting single
     * IPv6 addresses would give one attacker 2^64 seats).
     */
    static InetAddress sourceKey(InetAddress address) {
        if (address instanceof java.net.Inet6Address) {
            byte[] bytes = address.getAddress();
            java.util.Arrays.fill(bytes, 8, 16, (byte) 0);
            try {
                return InetAddress.getByAddress(bytes);
            } catch (java.net.UnknownHostException e) {
                throw new IllegalStateException("a 16-byte address is always valid", e);
            }
        }
        return address;
    }

    /** A ticket for a new unauthenticated connection from {@code address}, or null when a cap is reached. */
    Ticket tryEnter(InetAddress address) {
        InetAddress source = sourceKey(address);
        if (unauthenticated.incrementAndGet() > maxUnauthenticated) {
            unauthenticated.decrementAndGet();
            return null;
        }
        boolean[] admitted = {false};
        bySource.compute(source, (key, count) -> {
            int current = count == null ? 0 : count;
            if (current >= maxPerSource) {
                return count;
            }
            admitted[0] = true;
            return current + 1;
        });
        if (!admitted[0]) {
            unauthenticated.decrementAndGet();
            return null;
        }
        return new Ticket(source);
    }

    int unauthenticated() {
        return unauthenticated.get();
    }

    int authenticated() {
        return authenticated.get();
    }
}
