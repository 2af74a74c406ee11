package io.palisade.proxy;

import static java.nio.charset.StandardCharsets.UTF_8;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.palisade.pgwire.Md5Password;
import io.palisade.pgwire.PgMessages;
import io.palisade.pgwire.ScramClient;
import io.palisade.spi.Endpoint;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The proxy's connection to one database instance, opened only after the client proved the tenant password to the
 * proxy. Until the first ReadyForQuery it parses the backend's messages: it logs in with the tenant password (SCRAM,
 * MD5 or cleartext, as the backend asks), then shows the client the end of its own exchange (AuthenticationSASLFinal
 * for SCRAM clients) and AuthenticationOk, replaces BackendKeyData with the proxy's own cancel key, and turns any
 * authentication failure into the one canonical error; after that it passes every buffer read whole to the client and
 * flushes once per read burst ({@link BackendLink}). It keeps the login's ParameterStatus reports and the backend's
 * real cancel key for the pool; a backend taken from the pool skips the login ({@link #adopt}). Runs on the client's
 * event loop; not thread-safe otherwise.
 */
final class BackendHandler extends ChannelInboundHandlerAdapter {
    private static final Logger log = LoggerFactory.getLogger(BackendHandler.class);
    /**
     * How PostgreSQL's {@code 53300} for a role's or a database's own connection limit begins ("too many connections
     * for role ..." / "... for database ..."; the servers run untranslated), unlike a full server's ("sorry, too many
     * clients already", "remaining connection slots are reserved ...").
     */
    private static final String TENANT_LIMIT_MESSAGE = "too many connections for ";
    /** Nothing a server sends before ReadyForQuery is legitimately this large. */
    private static final int MAX_STARTUP_MESSAGE = 1 << 20;

    private enum Mode {
        AUTHENTICATE,
        OBSERVE,
        RELAY
    }

    private final BackendLink link;
    private final ClientSession session;
    private final StartupMessage startup;
    private final String user;
    private final String sessionAuthorization;
    private final Endpoint endpoint;
    private String password;
    private String serverFinal;
    private Mode mode = Mode.AUTHENTICATE;
    private ScramClient scram;
    private ByteBuf pending;
    private ChannelHandlerContext ctx;
    /** The ParameterStatus reports of the login, as the backend sent them (for the pool). */
    private final Map<String, String> parameters = new LinkedHashMap<>();
    private boolean tooManyReports;
    private int processId;
    private int secretKey;
    private final boolean clientAuthenticated;
    /** This login was given up for another one ({@link BackendLink#retryAfterFull}): its end is not the session's. */
    private boolean abandoned;

    /**
     * @param startup the startup message for the backend (whitelisted parameters, server login names)
     * @param password the tenant password the proxy logs in with
     * @param user the user name the backend knows (for MD5)
     * @param sessionAuthorization on a shared server, the tenant's user name to report in place of the server's
     *     internal role name in the {@code session_authorization} parameter; null to pass the server's report through
     * @param serverFinal the SCRAM server-final message to show a SCRAM client before AuthenticationOk; null for a
     *     client that sent a cleartext password
     * @param clientAuthenticated whether the client was already shown AuthenticationOk (by an earlier login attempt
     *     the server refused, {@link BackendLink#retryAfterFull}): this login does not show it again
     */
    BackendHandler(BackendLink link, Endpoint endpoint, StartupMessage startup, String password, String user,
            String sessionAuthorization, String serverFinal, boolean clientAuthenticated) {
        this.clientAuthenticated = clientAuthenticated;
        this.link = link;
        this.session = link.session();
        this.endpoint = endpoint;
        this.startup = startup;
        this.password = password;
        this.user = user;
        this.sessionAuthorization = sessionAuthorization;
        this.serverFinal = serverFinal;
    }

    /** The TCP connection is up: sends the startup message. */
    void connected() {
        ctx.writeAndFlush(startup.encode(ctx.alloc()));
    }

    /**
     * The connection came from the pool, logged in and reset: shows the client what a login would have (the end of
     * its SCRAM exchange, AuthenticationOk, the ParameterStatus set, a fresh proxy cancel key mapped to the backend's
     * real one, ReadyForQuery {@code I}) and starts relaying at once.
     */
    void adopt(BackendPool.Login login) {
        password = null;
        parameters.putAll(login.parameters());
        processId = login.processId();
        secretKey = login.secretKey();
        ByteBufAllocator alloc = ctx.alloc();
        CompositeByteBuf toClient = alloc.compositeBuffer();
        if (serverFinal != null) {
            toClient.addComponent(true,
                    PgWire.authentication(alloc, PgWire.AUTH_SASL_FINAL, serverFinal.getBytes(UTF_8)));
            serverFinal = null;
        }
        toClient.addComponent(true, PgWire.authentication(alloc, PgWire.AUTH_OK, new byte[0]));
        parameters.forEach((name, value) -> toClient.addComponent(true, PgWire.parameterStatus(alloc, name,
                sessionAuthorization != null && name.equals("session_authorization") ? sessionAuthorization : value)));
        CancelRegistry.ProxyKey key = link.registerCancelKey(endpoint, processId, secretKey);
        toClient.addComponent(true, PgWire.backendKeyData(alloc, key.processId(), key.secretKey()));
        toClient.addComponent(true, PgWire.readyForQuery('I'));
        mode = Mode.RELAY;
        link.toClient(toClient);
        link.flushToClient();
        session.onBackendReady();
    }

    /**
     * The login's ParameterStatus reports and the backend's real cancel key, for the pool; null when the backend is
     * not fit for it: it reported more than {@link BackendPool#fits} allows, or this handler is in the middle of a
     * read (a Terminate the client pipelined behind its login reaches the link from inside it).
     */
    BackendPool.Login login(Map<String, String> reportedSince) {
        if (tooManyReports || pending != null) {
            return null;
        }
        Map<String, String> all = new LinkedHashMap<>(parameters);
        all.putAll(reportedSince);
        return BackendPool.fits(all) ? new BackendPool.Login(all, processId, secretKey) : null;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext context) {
        this.ctx = context;
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
        if (!(msg instanceof ByteBuf buf)) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (mode == Mode.RELAY) {
            link.fromBackend(buf);
            return;
        }
        if (abandoned) {
            buf.release(); // a login given up for another: nothing more of it reaches the client
            return;
        }
        if (pending == null) {
            pending = context.alloc().buffer(Math.max(256, buf.readableBytes()));
        }
        pending.writeBytes(buf);
        buf.release();
        List<ByteBuf> out = new ArrayList<>();
        boolean keepGoing;
        try {
            keepGoing = parse(out);
        } catch (RuntimeException e) {
            out.forEach(ReferenceCountUtil::release);
            log.debug("bad startup response from database {}: {}", link.databaseId(), e.toString());
            session.fail(PgWire.SQLSTATE_CONNECTION_FAILURE, "the database sent an invalid response during startup");
            context.close();
            return;
        }
        if (!keepGoing && !abandoned) {
            out.forEach(ReferenceCountUtil::release);
            return;
        }
        // an abandoned login still shows the client what came before the refusal (its AuthenticationOk)
        if (!out.isEmpty()) {
            CompositeByteBuf composite = context.alloc().compositeBuffer(out.size());
            composite.addComponents(true, out);
            link.toClient(composite);
            link.flushToClient();
        }
        if (keepGoing && mode != Mode.RELAY) {
            context.read();
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext context) {
        if (mode == Mode.RELAY) {
            link.flushToClient();
        }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext context) {
        link.backendWritabilityChanged();
        context.fireChannelWritabilityChanged();
    }

    /** Handles complete messages; returns false if the connection was failed. */
    private boolean parse(List<ByteBuf> out) {
        while (mode != Mode.RELAY && pending.readableBytes() >= 5) {
            int start = pending.readerIndex();
            byte type = pending.getByte(start);
            int length = pending.getInt(start + 1);
            if (length < 4 || length > MAX_STARTUP_MESSAGE) {
                throw new IllegalStateException("message length " + length + " out of range");
            }
            if (pending.readableBytes() < 1 + length) {
                break;
            }
            ByteBuf message = pending.readRetainedSlice(1 + length);
            try {
                if (!handle(type, message, out)) {
                    return false;
                }
            } finally {
                message.release();
            }
        }
        if (mode == Mode.RELAY) {
            if (pending.isReadable()) {
                ByteBuf rest = pending.retainedSlice();
                link.track(rest);
                out.add(rest);
            }
            pending.release();
            pending = null;
        }
        return true;
    }

    private boolean handle(byte type, ByteBuf message, List<ByteBuf> out) {
        switch (type) {
            case 'R' -> {
                if (message.readableBytes() < 9) {
                    throw new IllegalStateException("short authentication message");
                }
                int code = message.getInt(5);
                if (mode == Mode.AUTHENTICATE) {
                    return authenticate(code, message.slice(9, message.readableBytes() - 9), out);
                }
                out.add(message.retain());
            }
            case 'K' -> {
                if (message.readableBytes() != 13) {
                    throw new IllegalStateException("BackendKeyData of unexpected length");
                }
                processId = message.getInt(5);
                secretKey = message.getInt(9);
                CancelRegistry.ProxyKey key = link.registerCancelKey(endpoint, processId, secretKey);
                out.add(PgWire.backendKeyData(ctx.alloc(), key.processId(), key.secretKey()));
            }
            case 'E' -> {
                Map<Character, String> fields = PgWire.errorFields(message.slice(5, message.readableBytes() - 5));
                if (PgWire.SQLSTATE_INVALID_PASSWORD.equals(fields.get('C'))) {
                    // the client proved the stored password to the proxy, so the server and the store disagree
                    log.warn("database {} refused the tenant password the store holds; the client proved that"
                            + " password to the proxy, so the server's role and the store are out of step",
                            link.databaseId());
                    session.authenticationFailed();
                    ctx.close();
                    return false;
                }
                if (PgMessages.SQLSTATE_TOO_MANY_CONNECTIONS.equals(fields.get('C'))) {
                    // parked connections may hold the server's slots; a role's or database's own limit is the
                    // tenant's affair: it must not cost other tenants of a shared server their parked connections
                    boolean serverWide = !fields.getOrDefault('M', "").startsWith(TENANT_LIMIT_MESSAGE);
                    if (link.retryAfterFull(endpoint, serverWide, clientAuthenticated || mode != Mode.AUTHENTICATE)) {
                        abandoned = true;
                        ctx.close();
                        return false;
                    }
                }
                out.add(message.retain());
            }
            case 'S' -> {
                ByteBuf body = message.slice(5, message.readableBytes() - 5);
                String name = PgWire.readCString(body);
                String value = name == null ? null : PgWire.readCString(body);
                if (value != null && (parameters.containsKey(name) || parameters.size() < BackendPool.MAX_REPORTS)) {
                    parameters.put(name, value);
                } else if (value != null) {
                    tooManyReports = true; // a hostile server must not grow the map: this backend is never pooled
                }
                if (sessionAuthorization != null && PgWire.isParameterStatus(message, "session_authorization")) {
                    out.add(PgWire.parameterStatus(ctx.alloc(), "session_authorization", sessionAuthorization));
                } else {
                    out.add(message.retain());
                }
            }
            case 'Z' -> {
                out.add(message.retain());
                mode = Mode.RELAY;
                session.onBackendReady();
            }
            default -> out.add(message.retain());
        }
        return true;
    }

    private boolean authenticate(int code, ByteBuf payload, List<ByteBuf> out) {
        switch (code) {
            case PgWire.AUTH_OK -> {
                password = null;
                mode = Mode.OBSERVE;
                if (serverFinal != null) {
                    out.add(PgWire.authentication(ctx.alloc(), PgWire.AUTH_SASL_FINAL, serverFinal.getBytes(UTF_8)));
                    serverFinal = null;
                }
                if (!clientAuthenticated) {
                    out.add(PgWire.authentication(ctx.alloc(), PgWire.AUTH_OK, new byte[0]));
                }
                return true;
            }
            case PgWire.AUTH_CLEARTEXT -> sendPassword(password);
            case PgWire.AUTH_MD5 -> {
                byte[] salt = new byte[4];
                payload.getBytes(payload.readerIndex(), salt);
                sendPassword(Md5Password.response(password, user, salt));
            }
            case PgWire.AUTH_SASL -> {
                List<String> mechanisms = new ArrayList<>();
                String mechanism;
                while ((mechanism = PgWire.readCString(payload)) != null && !mechanism.isEmpty()) {
                    mechanisms.add(mechanism);
                }
                if (!mechanisms.contains(ScramClient.MECHANISM)) {
                    return unsupported("SASL mechanisms " + mechanisms);
                }
                scram = new ScramClient(password);
                ctx.writeAndFlush(PgWire.saslInitialResponse(ctx.alloc(), ScramClient.MECHANISM,
                        scram.clientFirstMessage()));
            }
            case PgWire.AUTH_SASL_CONTINUE -> {
                if (scram == null) {
                    throw new IllegalStateException("SASLContinue without SASL");
                }
                // PBKDF2 is milliseconds of CPU: compute it off the event loop, then hop back to answer
                String serverFirst = payload.toString(UTF_8);
                ScramClient exchange = scram;
                CompletableFuture.supplyAsync(() -> exchange.clientFinalMessage(serverFirst), link.cpuExecutor())
                        .whenComplete((clientFinal, error) -> ctx.executor().execute(() -> {
                            if (!ctx.channel().isActive()) {
                                return;
                            }
                            if (error != null) {
                                session.authenticationFailed();
                                ctx.close();
                                return;
                            }
                            ctx.writeAndFlush(PgWire.passwordMessage(ctx.alloc(), clientFinal.getBytes(UTF_8)));
                        }));
            }
            case PgWire.AUTH_SASL_FINAL -> {
                if (scram == null || !scram.verifyServerFinal(payload.toString(UTF_8))) {
                    session.authenticationFailed();
                    ctx.close();
                    return false;
                }
            }
            default -> {
                return unsupported("authentication request " + code);
            }
        }
        return true;
    }

    private void sendPassword(String value) {
        ctx.writeAndFlush(Unpooled.wrappedBuffer(PgMessages.passwordMessage(value)));
    }

    private boolean unsupported(String what) {
        log.warn("database {} asked the proxy for {}, which it cannot answer", link.databaseId(), what);
        session.fail(PgWire.SQLSTATE_INVALID_AUTHORIZATION, "the database asked for " + what + ", which the proxy"
                + " cannot answer; the tenant's server must accept SCRAM-SHA-256, MD5 or password logins");
        ctx.close();
        return false;
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) {
        release();
        if (!abandoned) {
            session.backendClosed();
        }
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext context) {
        release();
    }

    private void release() {
        if (pending != null) {
            pending.release();
            pending = null;
        }
        password = null;
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext context, Throwable cause) {
        log.debug("connection to database {} failed: {}", link.databaseId(), cause.toString());
        context.close();
    }
}
