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
 * for longer than the limit. An idle keep-alive connection (no bytes) is left to Jetty's idle timeout; a body, once the
 * head is in, must keep coming at {@link #MIN_BODY_RATE} (Jetty's minimum request data rate). Thread-safe.
 */
final class RequestHeadDeadline implements Connection.Listener, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RequestHeadDeadline.class);
    static final Duration LIMIT = Duration.ofSeconds(10);
    static final long SLOW_BYTES = 64 * 1024;
    /** Bytes per second a request body must arrive at once its head is in (Jetty answers 408 below it). */
    static final long MIN_BODY_RATE = 16 * 1024;
    private static final Duration CHECK_EVERY = Duration.ofSeconds(1);

    /** Requests begun and answered, and bytes read, when the connection last made progress (a request or answer). */
    private record Progress(long requests, long answers, long bytes, long sinceNanos) {}

    private final Map<Connection, Progress> connections = new ConcurrentHashMap<>();
    private final ScheduledExecutorService checker = Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("api-head-deadline").daemon().unstarted(r));
    private final long limitNanos;

    RequestHeadDeadline(Duration limit) {
        this.limitNanos = requireNonNull(limit, "limit is null").toNanos();
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
            connections.put(connection, new Progress(0, 0, 0, System.nanoTime()));
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
                connections.replace(connection, last, new Progress(requests, answers, bytes, now));
                return;
            }
            // bytes since the last request or answer, and no new request: a head (or a body) under way
            long read = bytes - last.bytes();
            if (read > 0 && read < SLOW_BYTES && now - last.sinceNanos() > limitNanos) {
                log.debug("closing an API connection whose request took over {} s to arrive",
                        limitNanos / 1_000_000_000);
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
