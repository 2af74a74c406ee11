package io.palisade.api;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.HttpConnection;
import org.eclipse.jetty.util.component.ContainerLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes API connections that take longer than {@link #LIMIT} to send a request (Slowloris): Jetty's idle timeout
 * restarts with every byte, so headers dribbled a byte a second would hold a socket forever. A connection is closed
 * when bytes arrived since its last request began or was answered, fewer than {@link #SLOW_BYTES} of them (a head or a
 * small body, not a large upload, which the request size limit bounds), and no new request began or answer went out
 * for longer than the limit; and one whose request, of any size, is still arriving {@link #WHOLE_LIMIT} after it
 * began (a large body dribbled). An idle keep-alive connection, or one whose request is in and being answered (no
 * bytes arriving), is left alone: Jetty's idle timeout ends the first. Thread-safe.
 */
final class RequestHeadDeadline implements Connection.Listener, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RequestHeadDeadline.class);
    static final Duration LIMIT = Duration.ofSeconds(10);
    static final long SLOW_BYTES = 64 * 1024;
    /** How long a request may take to arrive whole, however fast its bytes come (a large body dribbled). */
    static final Duration WHOLE_LIMIT = Duration.ofSeconds(60);
    private static final Duration CHECK_EVERY = Duration.ofSeconds(1);

    /**
     * Requests begun and answered, and bytes read, when the connection last made progress (a request or an answer), and
     * when bytes last arrived.
     */
    private record Progress(long requests, long answers, long bytes, long sinceNanos, long lastBytes,
            long lastByteNanos) {
        Progress read(long now, long total) {
            return total == lastBytes ? this : new Progress(requests, answers, bytes, sinceNanos, total, now);
        }
    }

    private final Map<Connection, Progress> connections = new ConcurrentHashMap<>();
    private final ScheduledExecutorService checker = Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("api-head-deadline").daemon().unstarted(r));
    private final long limitNanos;
    private final long wholeLimitNanos;

    RequestHeadDeadline(Duration limit) {
        this(limit, WHOLE_LIMIT);
    }

    /**
     * @param limit how long a head (or a small body) may take to arrive
     * @param wholeLimit how long a request of any size may take to arrive
     */
    RequestHeadDeadline(Duration limit, Duration wholeLimit) {
        this.limitNanos = requireNonNull(limit, "limit is null").toNanos();
        this.wholeLimitNanos = requireNonNull(wholeLimit, "wholeLimit is null").toNanos();
        checker.scheduleWithFixedDelay(this::check, CHECK_EVERY.toMillis(), CHECK_EVERY.toMillis(),
                TimeUnit.MILLISECONDS);
    }

    /** Watches every connection the connectors accept from now on. */
    void install(Connector[] connectors) {
        for (Connector connector : connectors) {
            if (connector instanceof ContainerLifeCycle container) {
                container.addBean(this);
            }
        }
    }

    @Override
    public void onOpened(Connection connection) {
        // the HTTP connection itself, plain or inside TLS (a TLS connection counts no requests of its own)
        if (connection instanceof HttpConnection) {
            long now = System.nanoTime();
            connections.put(connection, new Progress(0, 0, 0, now, 0, now));
        }
    }

    @Override
    public void onClosed(Connection connection) {
        connections.remove(connection);
    }

    private void check() {
        long now = System.nanoTime();
        connections.forEach((connection, last) -> {
            long requests = connection.getMessagesIn();
            long answers = connection.getMessagesOut();
            long bytes = connection.getBytesIn();
            if (requests != last.requests() || answers != last.answers()) {
                connections.replace(connection, last, new Progress(requests, answers, bytes, now, bytes, now));
                return;
            }
            Progress progress = last.read(now, bytes);
            connections.replace(connection, last, progress);
            // bytes since the last request or answer, still coming, and no new request or answer since
            long read = bytes - progress.bytes();
            boolean arriving = read > 0 && now - progress.lastByteNanos() <= limitNanos;
            long waiting = now - progress.sinceNanos();
            if (arriving && (read < SLOW_BYTES && waiting > limitNanos || waiting > wholeLimitNanos)) {
                log.debug("closing an API connection whose request took {} s to arrive", waiting / 1_000_000_000);
                connections.remove(connection);
                connection.close();
            }
        });
    }

    @Override
    public void close() {
        checker.shutdownNow();
    }
}
