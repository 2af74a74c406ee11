package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A TCP relay on the host end of one VM's veth link: it accepts connections from that VM's namespace address only (what
 * the guest's connections arrive as after the namespace's SNAT), at most {@code maxConnections} at a time, and pipes
 * each to a server on this host's loopback. {@link #close()} stops accepting and closes every relayed connection.
 * Thread-safe; one virtual thread accepts, two per connection copy bytes.
 */
final class HostRelay implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(HostRelay.class);
    private static final int CONNECT_TIMEOUT_MS = 10_000;
    private static final Duration ACCEPT_JOIN = Duration.ofSeconds(5);

    private final String name;
    private final InetAddress allowedPeer;
    private final InetSocketAddress target;
    private final int maxConnections;
    private final ServerSocket listener;
    private final Set<Pair> pairs = ConcurrentHashMap.newKeySet();
    private final AtomicLong accepted = new AtomicLong();
    private final AtomicLong refused = new AtomicLong();
    private final Thread acceptor;
    private volatile boolean closed;

    private HostRelay(String name, ServerSocket listener, InetAddress allowedPeer, InetSocketAddress target,
            int maxConnections) {
        this.name = name;
        this.listener = listener;
        this.allowedPeer = allowedPeer;
        this.target = target;
        this.maxConnections = maxConnections;
        this.acceptor = Thread.ofVirtual().name(name + "-accept").unstarted(this::acceptLoop);
    }

    /**
     * Listens on a free port of {@code bindAddress} (a host address, never the wildcard) and relays connections from
     * {@code allowedPeer} to {@code target}, which must be a loopback address of this host.
     *
     * @param name names the relay's threads and log lines, e.g. {@code vm-route-<id>}
     */
    static HostRelay open(String name, String bindAddress, String allowedPeer, Endpoint target, int maxConnections) {
        requireNonNull(name, "name is null");
        requireNonNull(bindAddress, "bindAddress is null");
        requireNonNull(allowedPeer, "allowedPeer is null");
        requireNonNull(target, "target is null");
        if (maxConnections < 1) {
            throw new IllegalArgumentException("maxConnections must be positive: " + maxConnections);
        }
        InetAddress bind;
        InetAddress peer;
        InetAddress targetAddress;
        try {
            bind = InetAddress.getByName(bindAddress);
            peer = InetAddress.getByName(allowedPeer);
            targetAddress = InetAddress.getByName(target.host());
        } catch (IOException e) {
            throw PalisadeException.invalid("cannot resolve the relay's addresses (" + bindAddress + ", " + allowedPeer
                    + ", " + target + "): " + e.getMessage());
        }
        if (bind.isAnyLocalAddress()) {
            throw new IllegalArgumentException("a relay never listens on the wildcard address");
        }
        if (!targetAddress.isLoopbackAddress()) {
            throw PalisadeException.invalid("a VM can only be routed to a server on this host's loopback, not to "
                    + target + "; give the loopback address the server listens on (e.g. 127.0.0.1:<port>)");
        }
        ServerSocket listener = null;
        try {
            listener = new ServerSocket();
            listener.bind(new InetSocketAddress(bind, 0), maxConnections);
            HostRelay relay = new HostRelay(name, listener, peer, new InetSocketAddress(targetAddress, target.port()),
                    maxConnections);
            relay.acceptor.start();
            return relay;
        } catch (IOException e) {
            closeQuietly(listener);
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot listen on " + bindAddress + " for " + name
                    + ": " + e.getMessage() + "; is the VM's veth link still there?", e);
        }
    }

    /** The port the relay listens on (on its bind address). */
    int port() {
        return listener.getLocalPort();
    }

    /** Connections relayed right now. */
    int openConnections() {
        return pairs.size();
    }

    /** One relayed connection: the guest's side and the loopback side. */
    private record Pair(Socket inbound, Socket outbound) {
        void close() {
            closeQuietly(inbound);
            closeQuietly(outbound);
        }
    }

    private void acceptLoop() {
        int serial = 0;
        while (!closed) {
            Socket inbound;
            try {
                inbound = listener.accept();
            } catch (IOException e) {
                if (!closed) {
                    log.warn("{}: accept failed, the relay stops: {}", name, e.getMessage());
                }
                return;
            }
            if (!inbound.getInetAddress().equals(allowedPeer)) {
                refused.incrementAndGet();
                log.warn("{}: refused a connection from {} (only {} may use this relay)", name,
                        inbound.getInetAddress().getHostAddress(), allowedPeer.getHostAddress());
                closeQuietly(inbound);
                continue;
            }
            if (pairs.size() >= maxConnections) {
                refused.incrementAndGet();
                log.warn("{}: refused a connection, {} are open (the limit)", name, maxConnections);
                closeQuietly(inbound);
                continue;
            }
            Pair pair = new Pair(inbound, new Socket());
            pairs.add(pair);
            if (closed) { // close() may have run since the accept
                drop(pair);
                return;
            }
            accepted.incrementAndGet();
            int number = ++serial;
            Thread.ofVirtual().name(name + "-" + number + "-connect").start(() -> relay(pair, number));
        }
    }

    private void relay(Pair pair, int number) {
        try {
            pair.inbound().setTcpNoDelay(true);
            pair.outbound().setTcpNoDelay(true);
            pair.outbound().connect(target, CONNECT_TIMEOUT_MS);
        } catch (IOException e) {
            if (!closed) {
                log.warn("{}: cannot reach {} for a relayed connection: {}", name, target, e.getMessage());
            }
            drop(pair);
            return;
        }
        AtomicInteger ended = new AtomicInteger();
        Thread.ofVirtual().name(name + "-" + number + "-up")
                .start(() -> pipe(pair.inbound(), pair.outbound(), pair, ended));
        pipe(pair.outbound(), pair.inbound(), pair, ended);
    }

    /** Copies until end of stream, then half-closes the other side; the pair is dropped when both directions ended. */
    private void pipe(Socket from, Socket to, Pair pair, AtomicInteger ended) {
        try {
            // the streams are not closed here: that would close the socket while the other direction may still run
            from.getInputStream().transferTo(to.getOutputStream());
            to.shutdownOutput();
            if (ended.incrementAndGet() < 2) {
                return;
            }
        } catch (IOException e) {
            // reset, or closed by close(): the other direction ends too
        }
        drop(pair);
    }

    private void drop(Pair pair) {
        pair.close();
        pairs.remove(pair);
    }

    /** Stops accepting and closes every relayed connection. Idempotent; bounded. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeQuietly(listener);
        for (Pair pair : pairs) {
            drop(pair);
        }
        try {
            acceptor.join(ACCEPT_JOIN);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        log.info("{}: closed after relaying {} connections ({} refused)", name, accepted.get(), refused.get());
    }

    private static void closeQuietly(AutoCloseable closeable) {
        if (closeable != null) {
            try {
                closeable.close();
            } catch (Exception ignored) {
                // already gone
            }
        }
    }
}
