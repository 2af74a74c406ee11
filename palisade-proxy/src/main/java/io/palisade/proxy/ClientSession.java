package io.palisade.proxy;

import static java.nio.charset.StandardCharsets.UTF_8;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.ssl.SniCompletionEvent;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.palisade.pgwire.PgMessages;
import io.palisade.pgwire.ScramClient;
import io.palisade.spi.Backend;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection after the plaintext phase: waits for TLS, reads the StartupMessage, checks its parameters and
 * routes it to a database id, has {@link HostAuthentication} check the login on the host, and only then takes a
 * connection slot, resolves (perhaps wakes) the database and hands over to a {@link BackendLink}. Unknown ids, other
 * users and wrong passwords end in exactly the same bytes. Every method runs on the client channel's event loop (the
 * backend channel shares it); not thread-safe otherwise.
 */
final class ClientSession extends ChannelInboundHandlerAdapter {
    private static final Logger log = LoggerFactory.getLogger(ClientSession.class);
    private static final String POSTGRESQL_ALPN = "postgresql";

    private enum State {
        TLS,
        STARTUP,
        PASSWORD,
        SASL_INITIAL,
        SASL_FINAL,
        VERIFYING,
        CONNECTING,
        RELAY,
        CLOSED
    }

    private final PostgresProxy proxy;
    private final PreAuthLimits.Ticket ticket;
    private final long acceptedNanos = System.nanoTime();
    private ChannelHandlerContext ctx;
    private State state = State.TLS;
    private boolean directTls;
    private boolean tlsDone;
    private boolean authenticated;
    private boolean ready;
    private String sniHost;
    private ByteBuf pending;
    private ScheduledFuture<?> handshakeTimer;
    private ScheduledFuture<?> authenticationTimer;
    private ScheduledFuture<?> startupTimer;

    private StartupMessage startup;
    private String user;
    private String database;
    private String databaseId;
    private HostAuthentication authentication;
    private BackendLink link;

    /** @param ticket the connection's place under the pre-authentication caps; null when not counted (tests) */
    ClientSession(PostgresProxy proxy, PreAuthLimits.Ticket ticket) {
        this.proxy = proxy;
        this.ticket = ticket;
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
        authenticationTimer = context.executor().schedule(() -> {
            if (!authenticated && state != State.CLOSED) {
                proxy.rejected("authentication-timeout");
                timedOut();
            }
        }, config.authenticationTimeout().toMillis(), TimeUnit.MILLISECONDS);
        startupTimer = context.executor().schedule(() -> {
            if (!ready && state != State.CLOSED) {
                proxy.rejected("startup-timeout");
                timedOut();
            }
        }, config.startupTimeout().toMillis(), TimeUnit.MILLISECONDS);
        context.channel().closeFuture().addListener(future -> onClientClosed());
    }

    private void timedOut() {
        if (tlsDone) {
            fail(PgWire.SQLSTATE_CONNECTION_FAILURE, "Authentication timed out");
        } else {
            closeQuietly();
        }
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
            case RELAY -> link.toBackend(buf);
            case TLS, STARTUP, PASSWORD, SASL_INITIAL, SASL_FINAL, VERIFYING, CONNECTING -> {
                if (!cumulate(buf)) {
                    return;
                }
                process();
            }
            default -> buf.release();
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext context) {
        if (state == State.RELAY) {
            link.flushToBackend();
        }
        context.fireChannelReadComplete();
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext context) {
        if (state == State.RELAY) {
            link.clientWritabilityChanged();
        }
        context.fireChannelWritabilityChanged();
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
            // PostgreSQL logs an oversized startup or authentication packet and closes without a word
            proxy.rejected("protocol");
            closeQuietly();
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
                case PASSWORD, SASL_INITIAL, SASL_FINAL -> readPasswordMessage();
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
            // as PostgreSQL's postmaster: "invalid length of startup packet" goes to the log only, the socket closes
            proxy.rejected("protocol");
            closeQuietly();
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

    /** Everything here depends on the packet alone, never on whether the id exists. */
    private void onStartup(StartupMessage message) {
        StartupRouting.Result result = StartupRouting.route(message, sniHost, proxy.config().domain());
        if (result.refusal().isPresent()) {
            StartupRouting.Refusal refusal = result.refusal().get();
            if (refusal.reason() != null) {
                proxy.rejected(refusal.reason());
            }
            fail(refusal.sqlState(), refusal.message());
            return;
        }
        StartupRouting.Route route = result.route().orElseThrow();
        if (route.negotiate()) {
            ctx.write(PgWire.negotiateProtocolVersion(ctx.alloc(), 0, route.unrecognized()));
        }
        user = route.user();
        database = route.database();
        startup = route.startup();
        if (route.databaseId().isPresent()) {
            databaseId = route.databaseId().get();
            authentication = new HostAuthentication(proxy, databaseId, user, database);
            state = State.SASL_INITIAL;
            ctx.writeAndFlush(PgWire.authenticationSasl(ctx.alloc(), List.of(ScramClient.MECHANISM)));
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
            case SASL_INITIAL -> onSaslInitial(body);
            case SASL_FINAL -> onSaslFinal(body);
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
        databaseId = route.get().databaseId();
        authentication = new HostAuthentication(proxy, databaseId, user, database);
        verifying(authentication.verifyPassword(route.get().password()));
    }

    private void onSaslInitial(ByteBuf body) {
        Optional<String> serverFirst = PgWire.saslInitialData(body, ScramClient.MECHANISM)
                .flatMap(authentication::serverFirst);
        if (serverFirst.isEmpty()) {
            authenticationFailed();
            return;
        }
        state = State.SASL_FINAL;
        ctx.writeAndFlush(PgWire.authentication(ctx.alloc(), PgWire.AUTH_SASL_CONTINUE,
                serverFirst.get().getBytes(UTF_8)));
    }

    private void onSaslFinal(ByteBuf body) {
        verifying(authentication.verifyScram(body.toString(UTF_8)));
    }

    /** Waits (off the event loop) for the host's verdict, then continues on the event loop. */
    private void verifying(CompletableFuture<Optional<HostAuthentication.Verified>> verdict) {
        state = State.VERIFYING;
        ctx.channel().config().setAutoRead(false);
        onEventLoop(verdict, (result, error) -> {
            // only a refusal waits for the floor: a proven login reveals nothing the client does not know already
            boolean refused = error != null || result == null || result.isEmpty();
            long wait = refused ? authentication.notBeforeNanos() - System.nanoTime() : 0;
            if (wait > 0) {
                ctx.executor().schedule(() -> onVerdict(result, error), wait, TimeUnit.NANOSECONDS);
            } else {
                onVerdict(result, error);
            }
        });
    }

    private void onVerdict(Optional<HostAuthentication.Verified> result, Throwable error) {
        if (state != State.VERIFYING || !ctx.channel().isActive()) {
            return;
        }
        if (error != null) {
            proxy.rejected("credentials-unavailable");
            fail(ErrorCode.NOT_READY.sqlState(), "the proxy cannot check logins right now; try again in a few"
                    + " seconds");
        } else if (result.isEmpty()) {
            authenticationFailed();
        } else {
            onAuthenticated(result.get());
        }
    }

    void authenticationFailed() {
        proxy.rejected("authentication");
        fail(PgWire.SQLSTATE_INVALID_PASSWORD, "password authentication failed for user \"" + user + "\"");
    }

    // ---- after the host accepted the login ----

    private void onAuthenticated(HostAuthentication.Verified verified) {
        authenticated = true;
        authenticationTimer.cancel(false);
        if (ticket != null && !ticket.authenticate()) {
            proxy.rejected("max-client-connections");
            fail(PgMessages.SQLSTATE_TOO_MANY_CONNECTIONS, "too many clients are connected through the proxy;"
                    + " try again later");
            return;
        }
        DatabaseConnections.Slot slot = proxy.connections().tryAcquire(databaseId);
        if (slot == null) {
            proxy.rejected("too-many-connections");
            fail(ErrorCode.TOO_MANY_CONNECTIONS.sqlState(), "Too many connections to this endpoint ('" + databaseId
                    + "' allows " + proxy.connections().maxPerDatabase()
                    + " through the proxy). Please close idle connections or try again later.");
            return;
        }
        link = new BackendLink(this, proxy, databaseId, slot);
        state = State.CONNECTING;
        CompletableFuture<Optional<Backend>> future;
        try {
            future = proxy.resolver().resolve(databaseId);
        } catch (RuntimeException e) {
            future = CompletableFuture.failedFuture(e);
        }
        onEventLoop(future, (backend, error) -> onResolved(verified, backend, error));
    }

    private void onResolved(HostAuthentication.Verified verified, Optional<Backend> backend, Throwable error) {
        if (state != State.CONNECTING || !ctx.channel().isActive()) {
            return;
        }
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
            // deleted between the credential lookup and now: the slot just taken must not bring its meters back
            proxy.connections().forget(databaseId);
            authenticationFailed();
            return;
        }
        if (!link.open(backend.get(), startup, user, database, verified)) {
            authenticationFailed(); // not the tenant's names on a shared server
        }
    }

    /** The backend sent ReadyForQuery for the first time: the session is established. */
    void onBackendReady() {
        if (ready || state == State.CLOSED) {
            return;
        }
        ready = true;
        startupTimer.cancel(false);
        long elapsed = System.nanoTime() - acceptedNanos;
        link.ready(Duration.ofNanos(elapsed));
        log.debug("session to {} ready in {} µs", databaseId, elapsed / 1000);
        state = State.RELAY;
        if (pending != null) {
            ByteBuf rest = pending;
            pending = null;
            if (rest.isReadable()) {
                link.toBackend(rest);
                link.flushToBackend();
            } else {
                rest.release();
            }
        }
        link.startRelay();
    }

    /** Whether the session relays bytes (the backend's first ReadyForQuery has passed and nothing closed it). */
    boolean relaying() {
        return state == State.RELAY;
    }

    void backendClosed() {
        if (state != State.CLOSED) {
            state = State.CLOSED;
            BackendLink.closeOnFlush(ctx.channel());
        }
    }

    Channel clientChannel() {
        return ctx.channel();
    }

    private <T> void onEventLoop(CompletableFuture<T> future, BiConsumer<T, Throwable> then) {
        future.whenComplete((value, error) -> {
            try {
                ctx.executor().execute(() -> then.accept(value, error));
            } catch (RejectedExecutionException e) {
                log.debug("proxy shut down while serving database {}", databaseId);
            }
        });
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
        authenticationTimer.cancel(false);
        startupTimer.cancel(false);
        if (pending != null) {
            pending.release();
            pending = null;
        }
        if (ticket != null) {
            ticket.leave();
        }
        if (link != null) {
            link.close();
        }
    }
}
