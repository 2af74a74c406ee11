package io.palisade.proxy;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.ScheduledFuture;
import io.palisade.spi.Backend;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.ServerLogin;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One authenticated client's connection to its database: holds the per-database slot, connects, lets
 * {@link BackendHandler} log in with the tenant password, then relays bytes both ways with back-pressure (one read per
 * completed write), maps cancel keys and closes idle sessions. Runs on the client channel's event loop (the backend
 * channel shares it); not thread-safe otherwise.
 */
final class BackendLink {
    /** Backend-unreachable warnings, at most one per database per 10 s (a retrying client must not flood the log). */
    private static final WarningLimiter UNREACHABLE_WARNINGS = new WarningLimiter(10_000_000_000L);
    private static final Logger log = LoggerFactory.getLogger(BackendLink.class);

    private final ClientSession session;
    private final PostgresProxy proxy;
    private final String databaseId;
    private final DatabaseConnections.Slot slot;
    private Channel backend;
    private CancelRegistry.ProxyKey cancelKey;
    private ScheduledFuture<?> idleTimer;
    private long lastActivityNanos;
    private boolean closed;

    BackendLink(ClientSession session, PostgresProxy proxy, String databaseId, DatabaseConnections.Slot slot) {
        this.session = session;
        this.proxy = proxy;
        this.databaseId = databaseId;
        this.slot = slot;
    }

    /**
     * Connects to {@code backend} and logs in there with the tenant password, under the server login
     * {@link Backend#map} gives for the client's names; false (nothing done) when it gives none.
     */
    boolean open(Backend backend, StartupMessage startup, String user, String database,
            HostAuthentication.Verified verified) {
        Optional<ServerLogin> login = backend.map(user, database);
        if (login.isEmpty()) {
            return false;
        }
        StartupMessage toBackend = startup;
        String sessionAuthorization = null;
        String backendUser = user;
        if (backend.rewrites()) {
            Map<String, String> parameters = new LinkedHashMap<>(startup.parameters());
            parameters.put("user", login.get().user());
            parameters.put("database", login.get().database());
            toBackend = startup.withParameters(parameters);
            sessionAuthorization = user;
            backendUser = login.get().user();
        }
        proxy.resolver().touch(databaseId);
        connect(backend.endpoint(), new BackendHandler(this, backend.endpoint(), toBackend,
                verified.credentials().password(), backendUser, sessionAuthorization, verified.serverFinal()));
        return true;
    }

    /** Connects and starts the login: the handler sends the startup message once connected. */
    private void connect(Endpoint endpoint, BackendHandler handler) {
        Channel client = session.clientChannel();
        Bootstrap bootstrap = new Bootstrap()
                .group(client.eventLoop())
                .channel(NioSocketChannel.class)
                .option(ChannelOption.AUTO_READ, false)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) proxy.config().backendConnectTimeout().toMillis())
                .handler(handler);
        var connect = bootstrap.connect(endpoint.host(), endpoint.port());
        backend = connect.channel();
        proxy.trackBackend(backend);
        connect.addListener((ChannelFutureListener) future -> {
            if (!future.isSuccess()) {
                if (UNREACHABLE_WARNINGS.shouldWarn(databaseId)) {
                    log.warn("cannot connect to database {} at {}: {} (repeats within 10 s are logged at debug)",
                            databaseId, endpoint, future.cause().toString());
                } else {
                    log.debug("cannot connect to database {} at {}: {}", databaseId, endpoint,
                            future.cause().toString());
                }
                proxy.rejected("backend-unreachable");
                session.fail(ErrorCode.NOT_READY.sqlState(), "cannot reach database '" + databaseId
                        + "': its instance is not accepting connections; try again in a few seconds");
                return;
            }
            if (closed) {
                future.channel().close();
                return;
            }
            handler.connected();
            future.channel().read();
        });
    }

    /** Client bytes to the backend; reads more from the client once written. */
    void toBackend(ByteBuf buf) {
        lastActivityNanos = System.nanoTime();
        slot.received(buf.readableBytes());
        backend.writeAndFlush(buf).addListener((ChannelFutureListener) future -> {
            if (future.isSuccess()) {
                session.clientChannel().read();
            } else {
                session.closeQuietly();
            }
        });
    }

    /** Backend bytes to the client; reads more from the backend once written. */
    void toClient(ByteBuf buf) {
        if (closed) {
            buf.release();
            return;
        }
        lastActivityNanos = System.nanoTime();
        slot.sent(buf.readableBytes());
        session.clientChannel().writeAndFlush(buf).addListener((ChannelFutureListener) future -> {
            if (future.isSuccess()) {
                if (backend != null) {
                    backend.read();
                }
            } else {
                session.closeQuietly();
            }
        });
    }

    CancelRegistry.ProxyKey registerCancelKey(Endpoint endpoint, int processId, int secretKey) {
        if (cancelKey != null) {
            proxy.cancels().unregister(cancelKey);
        }
        cancelKey = proxy.cancels().register(new CancelRegistry.Target(databaseId, endpoint, processId, secretKey));
        return cancelKey;
    }

    /** The backend sent its first ReadyForQuery: records the handshake time and starts idle detection. */
    void ready(Duration sinceAccept) {
        slot.handshakeDone(sinceAccept);
        lastActivityNanos = System.nanoTime();
        if (!proxy.config().idleTimeout().isZero()) {
            scheduleIdleCheck(proxy.config().idleTimeout().toNanos());
        }
    }

    /**
     * Idle detection without per-message work beyond one {@code nanoTime}: a timer that re-arms itself for the time
     * left since the last relayed byte (either direction).
     */
    private void scheduleIdleCheck(long delayNanos) {
        idleTimer = session.clientChannel().eventLoop().schedule(() -> {
            if (closed) {
                return;
            }
            long idleNanos = proxy.config().idleTimeout().toNanos();
            long quiet = System.nanoTime() - lastActivityNanos;
            if (quiet >= idleNanos) {
                proxy.rejected("idle-timeout");
                log.debug("closing idle connection to {} after {}", databaseId, proxy.config().idleTimeout());
                session.closeQuietly();
            } else {
                scheduleIdleCheck(idleNanos - quiet);
            }
        }, delayNanos, TimeUnit.NANOSECONDS);
    }

    String databaseId() {
        return databaseId;
    }

    ClientSession session() {
        return session;
    }

    Executor cpuExecutor() {
        return proxy.cpuExecutor();
    }

    /** Frees the slot and the cancel key and closes the backend. Idempotent. */
    void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (idleTimer != null) {
            idleTimer.cancel(false);
        }
        if (cancelKey != null) {
            proxy.cancels().unregister(cancelKey);
            cancelKey = null;
        }
        proxy.connections().release(slot);
        if (backend != null) {
            closeOnFlush(backend);
        }
    }

    static void closeOnFlush(Channel channel) {
        if (channel.isActive()) {
            channel.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        } else {
            channel.close();
        }
    }
}
