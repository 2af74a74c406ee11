package io.palisade.proxy;

import static java.nio.charset.StandardCharsets.UTF_8;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SniCompletionEvent;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.palisade.pgwire.ScramClient;
import io.palisade.spi.Backend;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ServerLogin;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection after the plaintext phase: waits for TLS, reads the StartupMessage, routes it to a database,
 * authenticates (end to end, or on the client's behalf for the {@code endpoint=<id>;<password>} form), then relays
 * bytes with back-pressure. Unknown databases get a mock SCRAM exchange that ends exactly like a wrong password.
 * Every method runs on the client channel's event loop (the backend channel shares it); not thread-safe otherwise.
 */
final class ClientSession extends ChannelInboundHandlerAdapter {
    /** Backend-unreachable warnings, at most one per database per 10 s (a retrying client must not flood the log). */
    private static final WarningLimiter UNREACHABLE_WARNINGS = new WarningLimiter(10_000_000_000L);

    /** Thread-safe: a concurrent map of the last warning time per key. */
    static final class WarningLimiter {
        private final long intervalNanos;
        private final java.util.concurrent.ConcurrentHashMap<String, Long> last = new java.util.concurrent.ConcurrentHashMap<>();

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

    private static final Logger log = LoggerFactory.getLogger(ClientSession.class);
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String POSTGRESQL_ALPN = "postgresql";

    private enum State {
        TLS,
        STARTUP,
        PASSWORD,
        MOCK_SASL_INITIAL,
        MOCK_SASL_FINAL,
        CONNECTING,
        RELAY,
        CLOSED
    }

    private final PostgresProxy proxy;
    private final long acceptedNanos = System.nanoTime();
    private long tlsNanos;
    private long startupNanos;
    private long resolvedNanos;
    private long connectedNanos;
    private ChannelHandlerContext ctx;
    private State state = State.TLS;
    private boolean directTls;
    private boolean tlsDone;
    private boolean ready;
    private String sniHost;
    private ByteBuf pending;
    private ScheduledFuture<?> handshakeTimer;
    private ScheduledFuture<?> startupTimer;
    private ScheduledFuture<?> idleTimer;
    private long lastActivityNanos;

    private StartupMessage startup;
    private String user;
    /** On a shared server: the tenant's user name, reported instead of the server's internal role; else null. */
    private String sessionAuthorization;
    private String databaseId;
    private String proxyPassword;
    private DatabaseConnections.Slot slot;
    private boolean slotReleased;
    private Channel backend;
    private CancelRegistry.ProxyKey cancelKey;

    ClientSession(PostgresProxy proxy) {
        this.proxy = proxy;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext context) {
        this.ctx = context;
        ProxyConfig config = proxy.config();
        handshakeTimer = context.executor().schedule(() -> {
            if (!tlsDone && state != State.CLOSED) {
                proxy.rejected("handshake-timeout");
                closeQuietly();
            }
        }, config.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
        startupTimer = context.executor().schedule(() -> {
            if (!ready && state != State.CLOSED) {
                proxy.rejected("startup-timeout");
                if (tlsDone) {
                    fail(PgWire.SQLSTATE_CONNECTION_FAILURE, "Authentication timed out");
                } else {
                    closeQuietly();
                }
            }
        }, config.startupTimeout().toMillis(), TimeUnit.MILLISECONDS);
        context.channel().closeFuture().addListener(future -> onClientClosed());
    }

    // ---- plaintext phase (called by StartupSniffer) ----

    void startTls(ChannelPipeline pipeline, String afterName, boolean direct) {
        this.directTls = direct;
        SslContext sslContext = proxy.sslContext();
        long timeoutMillis = proxy.config().handshakeTimeout().toMillis();
        pipeline.addAfter(afterName, "tls", new SniHandler(host -> sslContext, 16 * 1024, timeoutMillis) {
            @Override
            protected SslHandler newSslHandler(SslContext context, ByteBufAllocator allocator) {
                SslHandler handler = super.newSslHandler(context, allocator);
                handler.setHandshakeTimeoutMillis(timeoutMillis);
                return handler;
            }
        });
    }

    void cancel(int processId, int secretKey) {
        state = State.CLOSED;
        proxy.cancel(processId, secretKey, ctx.channel().eventLoop());
        ctx.close();
    }

    // ---- events ----

    @Override
    public void userEventTriggered(ChannelHandlerContext context, Object event) {
        if (event instanceof SniCompletionEvent sni) {
            if (sni.isSuccess()) {
                sniHost = sni.hostname();
            }
        } else if (event instanceof SslHandshakeCompletionEvent handshake) {
            if (!handshake.isSuccess()) {
                proxy.rejected("tls");
                log.debug("TLS handshake failed from {}: {}", context.channel().remoteAddress(), handshake.cause());
                closeQuietly();
                return;
            }
            SslHandler ssl = context.pipeline().get(SslHandler.class);
            String alpn = ssl == null ? null : ssl.applicationProtocol();
            if ((directTls && !POSTGRESQL_ALPN.equals(alpn)) || (alpn != null && !POSTGRESQL_ALPN.equals(alpn))) {
                proxy.rejected("alpn");
                closeQuietly();
                return;
            }
            tlsDone = true;
            tlsNanos = System.nanoTime();
            handshakeTimer.cancel(false);
            proxy.tlsEstablished(directTls);
            if (state == State.TLS) {
                state = State.STARTUP;
                if (pending != null) {
                    process();
                }
            }
        } else {
            context.fireUserEventTriggered(event);
        }
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
        if (!(msg instanceof ByteBuf buf)) {
            ReferenceCountUtil.release(msg);
            return;
        }
        switch (state) {
            case RELAY -> toBackend(buf);
            case TLS, STARTUP, PASSWORD, MOCK_SASL_INITIAL, MOCK_SASL_FINAL, CONNECTING -> {
                if (!cumulate(buf)) {
                    return;
                }
                process();
            }
            default -> buf.release();
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext context, Throwable cause) {
        log.debug("client connection {} failed: {}", context.channel().remoteAddress(), cause.toString());
        closeQuietly();
    }

    // ---- startup ----

    private boolean cumulate(ByteBuf buf) {
        int limit = proxy.config().maxStartupPacketSize() + 5;
        int already = pending == null ? 0 : pending.readableBytes();
        if (already + buf.readableBytes() > limit) {
            buf.release();
            fail(PgWire.SQLSTATE_PROTOCOL_VIOLATION, "startup packet or password message too large (the limit is "
                    + proxy.config().maxStartupPacketSize() + " bytes)");
            return false;
        }
        if (pending == null) {
            pending = ctx.alloc().buffer(Math.max(256, buf.readableBytes()));
        }
        pending.writeBytes(buf);
        buf.release();
        return true;
    }

    private void process() {
        boolean progress = true;
        while (progress && pending != null && state != State.CLOSED) {
            progress = switch (state) {
                case STARTUP -> readStartup();
                case PASSWORD, MOCK_SASL_INITIAL, MOCK_SASL_FINAL -> readPasswordMessage();
                default -> false;
            };
        }
    }

    private boolean readStartup() {
        if (pending.readableBytes() < 4) {
            return false;
        }
        int length = pending.getInt(pending.readerIndex());
        if (length < 8 || length > proxy.config().maxStartupPacketSize()) {
            fail(PgWire.SQLSTATE_PROTOCOL_VIOLATION, "invalid length of startup packet");
            return false;
        }
        if (pending.readableBytes() < length) {
            return false;
        }
        ByteBuf body = pending.readSlice(length).skipBytes(4);
        int code = body.getInt(body.readerIndex());
        if (code == PgWire.CANCEL_REQUEST) {
            if (length == 16) {
                body.skipBytes(4);
                cancel(body.readInt(), body.readInt());
            } else {
                closeQuietly();
            }
            return false;
        }
        if (code == PgWire.SSL_REQUEST || code == PgWire.GSSENC_REQUEST) {
            fail(PgWire.SQLSTATE_PROTOCOL_VIOLATION, "encryption request received on an already encrypted connection");
            return false;
        }
        StartupMessage message;
        try {
            message = StartupMessage.parse(body);
        } catch (StartupMessage.ProtocolException e) {
            fail(PgWire.SQLSTATE_PROTOCOL_VIOLATION, e.getMessage());
            return false;
        }
        if (message.majorVersion() != 3) {
            fail(PgWire.SQLSTATE_FEATURE_NOT_SUPPORTED, "unsupported frontend protocol " + message.majorVersion() + "."
                    + message.minorVersion() + ": server supports 3.0 to 3.0");
            return false;
        }
        onStartup(message);
        return true;
    }

    private void onStartup(StartupMessage message) {
        user = message.user();
        if (user == null || user.isEmpty()) {
            fail(PgWire.SQLSTATE_INVALID_AUTHORIZATION, "no PostgreSQL user name specified in startup packet");
            return;
        }
        List<String> unrecognized = new ArrayList<>();
        Map<String, String> parameters = new LinkedHashMap<>();
        message.parameters().forEach((name, value) -> {
            if (name.startsWith("_pq_.")) {
                unrecognized.add(name);
            } else {
                parameters.put(name, value);
            }
        });
        if (message.minorVersion() > 0 || !unrecognized.isEmpty()) {
            ctx.write(PgWire.negotiateProtocolVersion(ctx.alloc(), 0, unrecognized));
        }
        Optional<String> fromSni;
        Optional<String> fromOptions;
        try {
            fromSni = Routing.fromSni(sniHost, proxy.config().domain());
            fromOptions = Routing.fromOptions(parameters.get("options"));
        } catch (Routing.RoutingException e) {
            fail(PgWire.SQLSTATE_REJECTED_CONNECTION, e.getMessage());
            return;
        }
        if (fromSni.isPresent() && fromOptions.isPresent() && !fromSni.get().equals(fromOptions.get())) {
            proxy.rejected("inconsistent-endpoint");
            fail(PgWire.SQLSTATE_REJECTED_CONNECTION, Routing.inconsistent(fromSni.get(), fromOptions.get()));
            return;
        }
        if (parameters.containsKey("options")) {
            Optional<String> rest = Routing.stripEndpoint(parameters.get("options"));
            if (rest.isPresent()) {
                parameters.put("options", rest.get());
            } else {
                parameters.remove("options");
            }
        }
        startup = message.withVersion(3, 0).withParameters(parameters);
        Optional<String> id = fromSni.or(() -> fromOptions);
        if (id.isPresent()) {
            resolve(id.get());
        } else {
            state = State.PASSWORD;
            ctx.writeAndFlush(PgWire.authentication(ctx.alloc(), PgWire.AUTH_CLEARTEXT, new byte[0]));
        }
    }

    /** Reads one frontend {@code p} message (password, SASLInitialResponse or SASLResponse). */
    private boolean readPasswordMessage() {
        if (pending.readableBytes() < 5) {
            return false;
        }
        byte type = pending.getByte(pending.readerIndex());
        int length = pending.getInt(pending.readerIndex() + 1);
        if (type != 'p') {
            fail(PgWire.SQLSTATE_PROTOCOL_VIOLATION, "expected password response, got message type " + type);
            return false;
        }
        if (length < 4 || length > proxy.config().maxStartupPacketSize()) {
            fail(PgWire.SQLSTATE_PROTOCOL_VIOLATION, "invalid password packet size");
            return false;
        }
        if (pending.readableBytes() < 1 + length) {
            return false;
        }
        ByteBuf body = pending.readSlice(1 + length).skipBytes(5);
        switch (state) {
            case PASSWORD -> onPassword(body);
            case MOCK_SASL_INITIAL -> onMockSaslInitial(body);
            default -> authenticationFailed();
        }
        return true;
    }

    private void onPassword(ByteBuf body) {
        String password = PgWire.readCString(body);
        if (password == null) {
            fail(PgWire.SQLSTATE_PROTOCOL_VIOLATION, "invalid password packet: missing terminator");
            return;
        }
        Optional<Routing.PasswordRoute> route = Routing.fromPassword(password);
        if (route.isEmpty()) {
            proxy.rejected("no-endpoint");
            fail(PgWire.SQLSTATE_REJECTED_CONNECTION, Routing.endpointNotSpecified());
            return;
        }
        proxyPassword = route.get().password();
        resolve(route.get().databaseId());
    }

    // ---- unknown database: a mock SCRAM exchange that fails like a wrong password ----

    private void startMockAuthentication() {
        if (proxyPassword != null) {
            authenticationFailed();
            return;
        }
        state = State.MOCK_SASL_INITIAL;
        ctx.writeAndFlush(PgWire.authenticationSasl(ctx.alloc(), List.of(ScramClient.MECHANISM)));
        ctx.channel().config().setAutoRead(true);
    }

    private void onMockSaslInitial(ByteBuf body) {
        String mechanism = PgWire.readCString(body);
        if (mechanism == null || body.readableBytes() < 4) {
            authenticationFailed();
            return;
        }
        int dataLength = body.readInt();
        if (dataLength < 0 || dataLength > body.readableBytes()) {
            authenticationFailed();
            return;
        }
        String clientFirst = body.toString(body.readerIndex(), dataLength, UTF_8);
        String clientNonce = null;
        for (String part : clientFirst.split(",")) {
            if (part.startsWith("r=")) {
                clientNonce = part.substring(2);
            }
        }
        if (clientNonce == null || clientNonce.isEmpty()) {
            authenticationFailed();
            return;
        }
        byte[] serverNonce = new byte[18];
        RANDOM.nextBytes(serverNonce);
        String serverFirst = "r=" + clientNonce + Base64.getEncoder().encodeToString(serverNonce) + ",s="
                + Base64.getEncoder().encodeToString(proxy.mockSalt(databaseId, user)) + ",i=4096";
        state = State.MOCK_SASL_FINAL;
        ctx.writeAndFlush(PgWire.authentication(ctx.alloc(), PgWire.AUTH_SASL_CONTINUE, serverFirst.getBytes(UTF_8)));
    }

    void authenticationFailed() {
        proxy.rejected("authentication");
        fail(PgWire.SQLSTATE_INVALID_PASSWORD, "password authentication failed for user \"" + user + "\"");
    }

    // ---- routing to the backend ----

    private void resolve(String id) {
        startupNanos = System.nanoTime();
        state = State.CONNECTING;
        databaseId = id;
        ctx.channel().config().setAutoRead(false);
        if (!Routing.isValidDatabaseId(id)) {
            onResolved(Optional.empty(), null);
            return;
        }
        CompletableFuture<Optional<Backend>> future;
        try {
            future = proxy.resolver().resolve(id);
        } catch (RuntimeException e) {
            future = CompletableFuture.failedFuture(e);
        }
        future.whenComplete((backend, error) -> {
            try {
                ctx.executor().execute(() -> onResolved(backend, error));
            } catch (RejectedExecutionException e) {
                log.debug("proxy shut down while resolving {}", id);
            }
        });
    }

    private void onResolved(Optional<Backend> backend, Throwable error) {
        if (state != State.CONNECTING || !ctx.channel().isActive()) {
            return;
        }
        resolvedNanos = System.nanoTime();
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        if (cause instanceof PalisadeException pe && pe.errorCode() == ErrorCode.NOT_FOUND) {
            backend = Optional.empty();
            cause = null;
        }
        if (cause != null) {
            log.warn("cannot find the instance of database {}: {}", databaseId, cause.toString());
            proxy.rejected("resolve-failed");
            fail(ErrorCode.NOT_READY.sqlState(),
                    "database '" + databaseId + "' is not available right now; try again in a few seconds");
            return;
        }
        if (backend == null || backend.isEmpty()) {
            startMockAuthentication();
            return;
        }
        Map<String, String> parameters = new LinkedHashMap<>(startup.parameters());
        Optional<ServerLogin> login = backend.get().map(user, parameters.getOrDefault("database", user));
        if (login.isEmpty()) {
            // not the tenant's user on a shared server: refused exactly like a wrong password
            startMockAuthentication();
            return;
        }
        if (backend.get().rewrites()) {
            parameters.put("user", login.get().user());
            parameters.put("database", login.get().database());
            startup = startup.withParameters(parameters);
            sessionAuthorization = user;
        }
        slot = proxy.connections().tryAcquire(databaseId);
        if (slot == null) {
            proxy.rejected("too-many-connections");
            fail(ErrorCode.TOO_MANY_CONNECTIONS.sqlState(), "Too many connections to this endpoint ('" + databaseId
                    + "' allows " + proxy.connections().maxPerDatabase()
                    + " through the proxy). Please close idle connections or try again later.");
            return;
        }
        proxy.resolver().touch(databaseId);
        connectBackend(backend.get().endpoint());
    }

    private void connectBackend(Endpoint endpoint) {
        boolean proxyAuthenticates = proxyPassword != null;
        BackendHandler handler = new BackendHandler(this, proxyAuthenticates ? proxyPassword : null, user,
                sessionAuthorization);
        proxyPassword = null;
        Bootstrap bootstrap = new Bootstrap()
                .group(ctx.channel().eventLoop())
                .channel(NioSocketChannel.class)
                .option(ChannelOption.AUTO_READ, false)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS,
                        (int) proxy.config().backendConnectTimeout().toMillis())
                .handler(handler);
        var connect = bootstrap.connect(endpoint.host(), endpoint.port());
        backend = connect.channel();
        proxy.trackBackend(backend);
        handler.endpoint(endpoint);
        connect.addListener((ChannelFutureListener) future -> {
            if (!future.isSuccess()) {
                if (UNREACHABLE_WARNINGS.shouldWarn(databaseId)) {
                    log.warn("cannot connect to database {} at {}: {} (repeats within 10 s are logged at debug)",
                            databaseId, endpoint, future.cause().toString());
                } else {
                    log.debug("cannot connect to database {} at {}: {}", databaseId, endpoint, future.cause().toString());
                }
                proxy.rejected("backend-unreachable");
                fail(ErrorCode.NOT_READY.sqlState(), "cannot reach database '" + databaseId
                        + "': its instance is not accepting connections; try again in a few seconds");
                return;
            }
            if (state == State.CLOSED) {
                future.channel().close();
                return;
            }
            connectedNanos = System.nanoTime();
            future.channel().writeAndFlush(startup.encode(ctx.alloc()));
            future.channel().read();
            if (!proxyAuthenticates) {
                startRelay();
            }
        });
    }

    private void startRelay() {
        state = State.RELAY;
        if (pending != null) {
            ByteBuf rest = pending;
            pending = null;
            if (rest.isReadable()) {
                toBackend(rest);
                return;
            }
            rest.release();
        }
        ctx.channel().read();
    }

    private void toBackend(ByteBuf buf) {
        lastActivityNanos = System.nanoTime();
        slot.received(buf.readableBytes());
        backend.writeAndFlush(buf).addListener((ChannelFutureListener) future -> {
            if (future.isSuccess()) {
                ctx.channel().read();
            } else {
                closeQuietly();
            }
        });
    }

    // ---- called by BackendHandler ----

    /** Sends bytes from the backend to the client; reads more from the backend once they are written. */
    void toClient(ByteBuf buf) {
        if (state == State.CLOSED) {
            buf.release();
            return;
        }
        lastActivityNanos = System.nanoTime();
        slot.sent(buf.readableBytes());
        ctx.writeAndFlush(buf).addListener((ChannelFutureListener) future -> {
            if (future.isSuccess()) {
                if (backend != null) {
                    backend.read();
                }
            } else {
                closeQuietly();
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

    /** The backend sent ReadyForQuery for the first time: the session is established. */
    void onBackendReady() {
        if (ready || state == State.CLOSED) {
            return;
        }
        ready = true;
        startupTimer.cancel(false);
        long now = System.nanoTime();
        slot.handshakeDone(Duration.ofNanos(now - acceptedNanos));
        if (log.isDebugEnabled()) {
            log.debug("session to {} ready in {} µs: TLS {}, startup {}, resolve {}, backend connect {}, auth {}",
                    databaseId, micros(now - acceptedNanos), micros(tlsNanos - acceptedNanos),
                    micros(startupNanos - tlsNanos), micros(resolvedNanos - startupNanos),
                    micros(connectedNanos - resolvedNanos), micros(now - connectedNanos));
        }
        lastActivityNanos = now;
        if (!proxy.config().idleTimeout().isZero()) {
            scheduleIdleCheck(proxy.config().idleTimeout().toNanos());
        }
        if (state != State.RELAY) {
            startRelay();
        }
    }

    /**
     * Idle detection without per-message work beyond one {@code nanoTime}: a timer that re-arms itself for the time
     * left since the last relayed byte (either direction).
     */
    private void scheduleIdleCheck(long delayNanos) {
        idleTimer = ctx.executor().schedule(() -> {
            if (state == State.CLOSED) {
                return;
            }
            long idleNanos = proxy.config().idleTimeout().toNanos();
            long quiet = System.nanoTime() - lastActivityNanos;
            if (quiet >= idleNanos) {
                proxy.rejected("idle-timeout");
                log.debug("closing idle connection to {} after {}", databaseId, proxy.config().idleTimeout());
                closeQuietly();
            } else {
                scheduleIdleCheck(idleNanos - quiet);
            }
        }, delayNanos, TimeUnit.NANOSECONDS);
    }

    void backendClosed() {
        if (state != State.CLOSED) {
            state = State.CLOSED;
            closeOnFlush(ctx.channel());
        }
    }

    String databaseId() {
        return databaseId;
    }

    Executor cpuExecutor() {
        return proxy.cpuExecutor();
    }

    Channel clientChannel() {
        return ctx.channel();
    }

    // ---- closing ----

    /** Sends a FATAL ErrorResponse and closes the connection after it is written. Idempotent. */
    void fail(String sqlState, String message) {
        if (state == State.CLOSED) {
            return;
        }
        state = State.CLOSED;
        if (ctx.channel().isActive()) {
            ctx.writeAndFlush(PgWire.errorResponse(ctx.alloc(), sqlState, message))
                    .addListener(ChannelFutureListener.CLOSE);
        } else {
            ctx.close();
        }
    }

    void closeQuietly() {
        state = State.CLOSED;
        ctx.close();
    }

    private void onClientClosed() {
        state = State.CLOSED;
        handshakeTimer.cancel(false);
        startupTimer.cancel(false);
        if (idleTimer != null) {
            idleTimer.cancel(false);
        }
        if (pending != null) {
            pending.release();
            pending = null;
        }
        proxyPassword = null;
        if (cancelKey != null) {
            proxy.cancels().unregister(cancelKey);
            cancelKey = null;
        }
        if (slot != null && !slotReleased) {
            slotReleased = true;
            proxy.connections().release(slot);
        }
        if (backend != null) {
            closeOnFlush(backend);
        }
    }

    private static long micros(long nanos) {
        return nanos / 1000;
    }

    static void closeOnFlush(Channel channel) {
        if (channel.isActive()) {
            channel.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        } else {
            channel.close();
        }
    }
}
