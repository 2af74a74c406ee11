package io.palisade.proxy;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.util.concurrent.ScheduledFuture;
import io.palisade.spi.Backend;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.ServerLogin;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One authenticated client's connection to its database: holds the per-database slot, connects, lets
 * {@link BackendHandler} log in with the tenant password, then relays bytes both ways, maps cancel keys and closes
 * idle sessions. Relaying passes each buffer read on one side whole to the other side's write and flushes once per
 * read burst ({@code channelReadComplete}), so a burst costs one system call (and, towards the client, as few TLS
 * records as its size allows) rather than one per buffer; back-pressure follows the channels' writability: a side
 * whose peer stops being writable stops reading until the peer drains below its low-water mark. With reuse enabled
 * ({@link BackendPool}) it first looks for a parked backend of exactly the same login on its event loop, and a
 * {@link RelayTracker} follows the relay's message boundaries: a client whose Terminate finds the backend idle leaves
 * it to the pool instead of ending it. Runs on the client channel's event loop (the backend channel shares it); not
 * thread-safe otherwise.
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
    private BackendHandler handler;
    private RelayTracker tracker;
    private BackendPool.Key poolKey;
    private long generation;
    /** What the pool had given back when this client's latest backend login began ({@link #retryAfterFull}). */
    private PoolCounts.Mark loginMark;
    /** What a second backend login needs, kept until the relay starts; null once used or no longer needed. */
    private Retry retry;
    private CancelRegistry.ProxyKey cancelKey;
    private ScheduledFuture<?> idleTimer;
    private long lastActivityNanos;
    private boolean closed;
    private boolean backendUnflushed;
    private boolean clientUnflushed;

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
        String password = verified.credentials().password();
        handler = new BackendHandler(this, backend.endpoint(), toBackend, password, backendUser, sessionAuthorization,
                verified.serverFinal(), false);
        BackendPool pool = proxy.backendPool();
        if (pool.enabled()) {
            retry = new Retry(backend.endpoint(), toBackend, password, backendUser, sessionAuthorization,
                    verified.serverFinal());
        }
        if (pool.enabled()) {
            poolKey = new BackendPool.Key(databaseId, backend.endpoint(), toBackend.parameters(),
                    sessionAuthorization == null ? "" : sessionAuthorization,
                    BackendPool.Key.credentialDigest(password));
            generation = pool.generation(databaseId);
            tracker = new RelayTracker();
            EventLoop loop = session.clientChannel().eventLoop();
            PooledBackend parked = pool.take(loop, poolKey);
            if (parked != null) {
                this.backend = parked.channel();
                BackendPool.Login reset = parked.login();
                parked.handOver(handler, "backend");
                handler.adopt(reset);
                return true;
            }
            DatabaseConnections connections = proxy.connections();
            int idle = pool.idle(databaseId);
            if (idle > 0 && connections.active(databaseId) + idle > connections.maxPerDatabase()) {
                // this login would take the database past its limit only because of the pool: one parked goes first
                connectAfter(pool.giveWay(databaseId, loop), backend.endpoint(), handler);
                return true;
            }
        }
        connect(backend.endpoint(), handler);
        return true;
    }

    /** What logging in to the backend a second time takes ({@link #retryAfterFull}). */
    private record Retry(Endpoint endpoint, StartupMessage startup, String password, String user,
            String sessionAuthorization, String serverFinal) {}

    /**
     * Once the pool has let backends go ({@code wait}, failed or not), connects on the client's event loop, unless the
     * session closed meanwhile or the database was evicted ({@link #connectUnlessEvicted}).
     */
    private void connectAfter(CompletableFuture<Void> wait, Endpoint endpoint, BackendHandler next) {
        EventLoop loop = session.clientChannel().eventLoop();
        wait.whenComplete((ignored, error) -> loop.execute(() -> {
            if (!closed) {
                connectUnlessEvicted(endpoint, next);
            }
        }));
    }

    /**
     * Connects after a wait for the pool, unless the database's backends were evicted meanwhile (a suspend, a move's
     * cutover, a restore): then {@code endpoint} may be gone, and the client is asked to try again.
     */
    private void connectUnlessEvicted(Endpoint endpoint, BackendHandler next) {
        if (proxy.backendPool().generation(databaseId) != generation) {
            session.fail(ErrorCode.NOT_READY.sqlState(), "database '" + databaseId + "' changed while this connection"
                    + " was being opened; try again");
            return;
        }
        connect(endpoint, next);
    }

    /**
     * The server refused the backend login with {@code 53300} before the session started. When the pool parks
     * backends that may be what fills the server (this database's; with {@code serverWide} also other databases' on
     * that server) or gave some back since this login began ({@link BackendPool#mayFreeSlots}), and this login was
     * not retried yet: gives them back, and once the server has let them go logs in again with a new handler, so the
     * client (which has seen at most the end of its own authentication, {@code clientAuthenticated}) never sees the
     * refusal. False when it does not retry: the caller passes the error on, after the pool gave back what it held
     * all the same.
     */
    boolean retryAfterFull(Endpoint endpoint, boolean serverWide, boolean clientAuthenticated) {
        BackendPool pool = proxy.backendPool();
        boolean mayFree = loginMark != null && pool.mayFreeSlots(databaseId, endpoint, serverWide, loginMark);
        CompletableFuture<Void> givenBack = pool.serverFull(databaseId, endpoint, serverWide);
        Retry again = retry;
        retry = null;
        if (again == null || !mayFree || closed || pool.generation(databaseId) != generation) {
            return false; // an evicted database (suspend, cutover) is not logged in to again: the client retries
        }
        BackendHandler next = new BackendHandler(this, again.endpoint(), again.startup(), again.password(),
                again.user(), again.sessionAuthorization(), clientAuthenticated ? null : again.serverFinal(),
                clientAuthenticated);
        handler = next;
        backend = null;
        connectAfter(givenBack, again.endpoint(), next);
        return true;
    }

    /** Connects and starts the login: the handler sends the startup message once connected. */
    private void connect(Endpoint endpoint, BackendHandler handler) {
        Channel client = session.clientChannel();
        if (poolKey != null) {
            loginMark = proxy.backendPool().mark(databaseId, endpoint);
        }
        Bootstrap bootstrap = new Bootstrap()
                .group(client.eventLoop())
                .channel(proxy.socketTransport().socketChannel())
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

    /**
     * Client bytes to the backend, written whole and flushed by {@link #flushToBackend()} at the end of the client's
     * read burst; stops reading the client while the backend is not writable. A failed write closes the backend
     * (its handler's {@code exceptionCaught}), which closes the client.
     */
    void toBackend(ByteBuf buf) {
        if (closed || backend == null) {
            buf.release();
            return;
        }
        if (tracker != null && tracker.fromClient(buf) == buf.readerIndex() && tracker.reusable() && park()) {
            buf.release();
            return;
        }
        lastActivityNanos = System.nanoTime();
        slot.received(buf.readableBytes());
        backend.write(buf, backend.voidPromise());
        backendUnflushed = true;
        if (!backend.isWritable()) {
            session.clientChannel().config().setAutoRead(false);
        }
    }

    /**
     * The client sent Terminate alone, with its backend idle: offers the backend to the pool (which resets it) instead
     * of passing Terminate on, and closes the client as a backend that ends would. False when the pool declines it,
     * when a cancel was ever forwarded for this session (it may still be on its way to the server) or when the backend
     * handler is in the middle of a read (the caller passes Terminate on).
     */
    private boolean park() {
        BackendPool.Login login = handler.login(tracker.reported());
        if (login == null) {
            return false;
        }
        if (cancelKey != null) {
            boolean cancelled = proxy.cancels().unregister(cancelKey);
            cancelKey = null;
            if (cancelled) {
                // the cancel may reach the server late, when the next client's query runs there: end this backend
                return false;
            }
        }
        if (!proxy.backendPool().offer(backend, handler, poolKey, generation, login)) {
            return false;
        }
        backend = null;
        backendUnflushed = false;
        session.backendClosed();
        return true;
    }

    /** Backend bytes of the relay: followed by the tracker, then passed to the client. */
    void fromBackend(ByteBuf buf) {
        if (tracker != null) {
            tracker.fromBackend(buf);
        }
        toClient(buf);
    }

    /** Backend bytes that followed its first ReadyForQuery in the same read: followed by the tracker only. */
    void track(ByteBuf buf) {
        if (tracker != null) {
            tracker.fromBackend(buf);
        }
    }

    /** Flushes what {@link #toBackend} wrote since the last flush. */
    void flushToBackend() {
        if (backendUnflushed && backend != null) {
            backendUnflushed = false;
            backend.flush();
        }
    }

    /**
     * Backend bytes to the client, written whole (the TLS handler encrypts them at the flush) and flushed by
     * {@link #flushToClient()} at the end of the backend's read burst; stops reading the backend while the client is
     * not writable. A failed write closes the client (its handler's {@code exceptionCaught}).
     */
    void toClient(ByteBuf buf) {
        if (closed) {
            buf.release();
            return;
        }
        lastActivityNanos = System.nanoTime();
        slot.sent(buf.readableBytes());
        Channel client = session.clientChannel();
        client.write(buf, client.voidPromise());
        clientUnflushed = true;
        if (!client.isWritable() && backend != null) {
            backend.config().setAutoRead(false);
        }
    }

    /** Flushes what {@link #toClient} wrote since the last flush. */
    void flushToClient() {
        if (clientUnflushed) {
            clientUnflushed = false;
            session.clientChannel().flush();
        }
    }

    /** The relay starts (the backend's first ReadyForQuery): both sides read on their own from now on. */
    void startRelay() {
        retry = null;
        if (closed || backend == null) {
            return;
        }
        session.clientChannel().config().setAutoRead(backend.isWritable());
        backend.config().setAutoRead(session.clientChannel().isWritable());
    }

    /** The backend drained below its low-water mark (or filled up): the client reads while the backend is writable. */
    void backendWritabilityChanged() {
        if (!closed && backend != null && session.relaying()) {
            session.clientChannel().config().setAutoRead(backend.isWritable());
        }
    }

    /** The client drained below its low-water mark (or filled up): the backend reads while the client is writable. */
    void clientWritabilityChanged() {
        if (!closed && backend != null && session.relaying()) {
            backend.config().setAutoRead(session.clientChannel().isWritable());
        }
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
        retry = null;
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
