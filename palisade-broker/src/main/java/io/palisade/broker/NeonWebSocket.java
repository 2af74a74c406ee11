package io.palisade.broker;

import io.javalin.websocket.WsConfig;
import io.javalin.websocket.WsContext;
import io.palisade.broker.SqlBroker.NoAccess;
import io.palisade.broker.pg.PgConnection;
import io.palisade.broker.pg.PgError;
import io.palisade.pgwire.PgMessages;
import io.palisade.spi.Backend;
import io.palisade.spi.ServerLogin;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.Session;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Neon's WebSocket transport for the driver's {@code Pool}/{@code Client}: the raw PostgreSQL byte stream in binary
 * frames. The broker answers SSLRequest with 'N', refuses startup parameters outside {@link StartupParameters}, asks
 * the client for a cleartext password (the driver pipelines it right after the StartupMessage), checks it on the host
 * ({@link SqlBroker#authenticate}), and only then resolves the database (which may wake it), logs in to the tenant's
 * PostgreSQL with SCRAM using that password, replays the session's ParameterStatus messages and a broker-made
 * BackendKeyData, then relays bytes both ways. A CancelRequest on a new WebSocket is routed by that key.
 *
 * <p>Until the login is checked a session gets {@link BrokerConfig#loginTimeout()} (as deadline and idle timeout) and
 * {@link BrokerConfig#maxLoginMessageBytes()}; sessions are capped in total, per client address while not logged in,
 * and, once logged in, per database.
 * Thread-safe.
 */
final class NeonWebSocket implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(NeonWebSocket.class);
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final int CANCEL_REQUEST = 80877102;
    private static final int MAX_STARTUP_BYTES = 10_000;

    private final SqlBroker broker;
    private final Map<String, Relay> relays = new ConcurrentHashMap<>();
    private final Map<Long, Relay> byCancelKey = new ConcurrentHashMap<>();
    private final Admission sessions;
    /** Sessions waiting for their login, per client address (the total is not used). */
    private final Admission pendingLogins;
    private final ScheduledThreadPoolExecutor deadlines;

    NeonWebSocket(SqlBroker broker) {
        this.broker = broker;
        this.sessions = new Admission(broker.config.maxWebSocketSessions(),
                broker.config.maxWebSocketSessionsPerDatabase());
        this.deadlines = new ScheduledThreadPoolExecutor(1, runnable -> {
            Thread thread = new Thread(runnable, "broker-ws-login-deadline");
            thread.setDaemon(true);
            return thread;
        });
        deadlines.setRemoveOnCancelPolicy(true);
        this.pendingLogins = new Admission(Integer.MAX_VALUE, broker.config.maxLoginsPerAddress());
        io.micrometer.core.instrument.Gauge.builder("palisade.broker.websocket.sessions", relays, Map::size)
                .description("open WebSocket sessions of the SQL broker")
                .register(broker.registry);
    }

    void configure(WsConfig ws) {
        ws.onConnect(ctx -> {
            ctx.session.setIdleTimeout(broker.config.loginTimeout());
            ctx.session.setMaxBinaryMessageSize(broker.config.maxLoginMessageBytes());
            ctx.session.setMaxTextMessageSize(broker.config.maxLoginMessageBytes());
            if (!sessions.enter()) {
                ctx.session.close(1013, "too many WebSocket sessions; try again later");
                return;
            }
            String address = clientAddress(ctx);
            if (!pendingLogins.enter(address)) {
                sessions.leave();
                ctx.session.close(1013, "too many WebSocket sessions waiting for their login from this address");
                return;
            }
            Relay relay = new Relay(ctx.sessionId(), ctx.session, databaseId(ctx), address);
            relays.put(ctx.sessionId(), relay);
            relay.deadline = deadlines.schedule(relay::loginExpired, broker.config.loginTimeout().toMillis(),
                    TimeUnit.MILLISECONDS);
        });
        ws.onBinaryMessage(ctx -> {
            Relay relay = relays.get(ctx.sessionId());
            if (relay != null) {
                relay.onData(ctx.data(), ctx.offset(), ctx.length());
            }
        });
        ws.onMessage(ctx -> {
            Relay relay = relays.get(ctx.sessionId());
            if (relay != null) {
                relay.fail("08P01", "text frames are not supported: send the PostgreSQL protocol in binary frames");
            }
        });
        ws.onClose(ctx -> closeRelay(ctx.sessionId()));
        ws.onError(ctx -> closeRelay(ctx.sessionId()));
    }

    private void closeRelay(String sessionId) {
        Relay relay = relays.remove(sessionId);
        if (relay != null) {
            relay.close();
        }
    }

    int openSessions() {
        return relays.size();
    }

    /** Sessions of a database whose login was checked. */
    int loggedInSessions(String databaseId) {
        return sessions.of(databaseId);
    }

    @Override
    public void close() {
        deadlines.shutdownNow();
        relays.keySet().forEach(this::closeRelay);
    }

    private static String clientAddress(WsContext ctx) {
        java.net.SocketAddress remote = ctx.session.getRemoteAddress();
        if (remote instanceof java.net.InetSocketAddress inet && inet.getAddress() != null) {
            byte[] address = inet.getAddress().getAddress();
            if (address.length == 16) {
                // an IPv6 client has a /64 to pick addresses from: count the /64, as the proxy does
                return java.util.HexFormat.of().formatHex(address, 0, 8) + "::/64";
            }
            return inet.getAddress().getHostAddress();
        }
        return String.valueOf(remote);
    }

    /** From the {@code address} parameter's host, else the Host header (port stripped): its first label. */
    private static String databaseId(WsContext ctx) {
        String address = ctx.queryParam("address");
        String host = address != null ? address : ctx.header("Host");
        if (host == null) {
            return null;
        }
        if (host.startsWith("[")) {
            return null;
        }
        int colon = host.lastIndexOf(':');
        return NeonHttp.firstLabel(colon < 0 ? host : host.substring(0, colon));
    }

    private enum Phase {
        STARTUP,
        PASSWORD,
        CONNECTING,
        RELAY,
        CLOSED
    }

    /** One WebSocket session and its backend connection. Thread-safe (guarded by itself). */
    private final class Relay {
        private final String id;
        private final Session session;
        private final String databaseId;
        private final String clientAddress;
        private boolean pendingLogin = true;
        private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
        private final Object sendLock = new Object();
        private Phase phase = Phase.STARTUP;
        private Map<String, String> startup;
        private PgConnection backend;
        private long cancelKey;
        private boolean loggedIn;
        private boolean databaseAdmitted;
        volatile ScheduledFuture<?> deadline;

        Relay(String id, Session session, String databaseId, String clientAddress) {
            this.id = id;
            this.session = session;
            this.databaseId = databaseId;
            this.clientAddress = clientAddress;
        }

        void onData(byte[] data, int offset, int length) {
            PgConnection relayTo;
            synchronized (this) {
                relayTo = phase == Phase.RELAY ? backend : null;
                if (relayTo == null) {
                    if (phase == Phase.CLOSED) {
                        return;
                    }
                    pending.write(data, offset, length);
                    if (pending.size() > (loggedIn ? broker.config.maxRequestBytes()
                            : broker.config.maxLoginMessageBytes())) {
                        fail("54000", "too much data sent before the login completed");
                        return;
                    }
                    advance();
                    return;
                }
            }
            try {
                relayTo.writeRaw(data, offset, length);
            } catch (IOException e) {
                close();
            }
        }

        /** Parses what the client sent before the relay starts. Caller holds the lock. */
        private void advance() {
            while (true) {
                byte[] buffer = pending.toByteArray();
                if (phase == Phase.STARTUP) {
                    if (buffer.length < 8) {
                        return;
                    }
                    int length = int32(buffer, 0);
                    int code = int32(buffer, 4);
                    if (length < 8 || length > MAX_STARTUP_BYTES) {
                        fail("08P01", "invalid startup packet length " + length);
                        return;
                    }
                    if (buffer.length < length) {
                        return;
                    }
                    consume(buffer, length);
                    if ((code == PgMessages.SSL_REQUEST || code == PgMessages.GSSENC_REQUEST) && length == 8) {
                        send(new byte[] {'N'});
                        continue;
                    }
                    if (code == CANCEL_REQUEST && length == 16) {
                        long key = ((long) int32(buffer, 8) << 32) | (int32(buffer, 12) & 0xffffffffL);
                        Relay target = byCancelKey.get(key);
                        if (target != null) {
                            target.cancel();
                        }
                        shutdown();
                        return;
                    }
                    if ((code >>> 16) != 3) {
                        fail("08P01", "unsupported frontend protocol " + (code >>> 16) + "." + (code & 0xffff));
                        return;
                    }
                    startup = parseStartup(buffer, length);
                    if (!startup.containsKey("user")) {
                        fail("28000", "no PostgreSQL user name specified in startup packet");
                        return;
                    }
                    try {
                        StartupParameters.forServer(startup);
                    } catch (IllegalArgumentException e) {
                        fail("0A000", e.getMessage());
                        return;
                    }
                    // like Neon: ask for the password in clear (inside the WebSocket) and check it with the backend
                    send(new byte[] {'R', 0, 0, 0, 8, 0, 0, 0, 3});
                    phase = Phase.PASSWORD;
                } else if (phase == Phase.PASSWORD) {
                    if (buffer.length < 5) {
                        return;
                    }
                    int length = int32(buffer, 1);
                    if (buffer[0] != 'p' || length < 5 || length > MAX_STARTUP_BYTES) {
                        fail("08P01", "expected a password message");
                        return;
                    }
                    if (buffer.length < length + 1) {
                        return;
                    }
                    int end = 5;
                    while (end < length + 1 && buffer[end] != 0) {
                        end++;
                    }
                    String password = new String(buffer, 5, end - 5, StandardCharsets.UTF_8);
                    consume(buffer, length + 1);
                    phase = Phase.CONNECTING;
                    Thread.ofVirtual().name("broker-ws-" + id).start(() -> connectAndRelay(password));
                    return;
                } else {
                    return;
                }
            }
        }

        private void consume(byte[] buffer, int count) {
            pending.reset();
            pending.write(buffer, count, buffer.length - count);
        }

        private void connectAndRelay(String password) {
            String user = startup.get("user");
            String database = startup.getOrDefault("database", user);
            PgConnection connection;
            try {
                if (databaseId == null) {
                    throw new NoAccess();
                }
                broker.authenticate(databaseId, user, database, password);
                if (!admitLoggedIn()) {
                    fail("53300", "too many WebSocket sessions for this database (at most "
                            + broker.config.maxWebSocketSessionsPerDatabase() + "); close some and try again");
                    return;
                }
                Backend backend = broker.resolve(databaseId);
                ServerLogin login = SqlBroker.serverLogin(backend, user, database);
                Map<String, String> params = new LinkedHashMap<>();
                params.put("user", login.user());
                params.put("database", login.database());
                params.putAll(StartupParameters.forServer(startup));
                connection = PgConnection.connect(backend.endpoint(), params, password, broker.config.connectTimeout());
            } catch (NoAccess e) {
                fail("28P01", "password authentication failed for user '" + user + "'");
                return;
            } catch (PgError e) {
                if (e.isAuthenticationFailure()) {
                    fail("28P01", "password authentication failed for user '" + user + "'");
                } else {
                    fail(e.sqlState(), e.getMessage());
                }
                return;
            } catch (IOException | RuntimeException e) {
                fail("08006", "could not connect to the database: " + e.getMessage());
                return;
            }
            ByteArrayOutputStream hello = new ByteArrayOutputStream();
            hello.writeBytes(new byte[] {'R', 0, 0, 0, 8, 0, 0, 0, 0});
            connection.parameters().forEach((name, reported) -> {
                // on a shared server the session belongs to an internal role: report the tenant's own user name
                String value = name.equals("session_authorization") ? user : reported;
                byte[] n = name.getBytes(StandardCharsets.UTF_8);
                byte[] v = value.getBytes(StandardCharsets.UTF_8);
                hello.write('S');
                hello.writeBytes(int32(4 + n.length + 1 + v.length + 1));
                hello.writeBytes(n);
                hello.write(0);
                hello.writeBytes(v);
                hello.write(0);
            });
            long key;
            do {
                key = RANDOM.nextLong() & 0x7fffffff7fffffffL;
            } while (byCancelKey.putIfAbsent(key, this) != null);
            hello.write('K');
            hello.writeBytes(int32(12));
            hello.writeBytes(int32((int) (key >>> 32)));
            hello.writeBytes(int32((int) key));
            hello.writeBytes(new byte[] {'Z', 0, 0, 0, 5, 'I'});
            byte[] early;
            synchronized (this) {
                if (phase == Phase.CLOSED) {
                    byCancelKey.remove(key);
                    connection.close();
                    return;
                }
                backend = connection;
                cancelKey = key;
                send(hello.toByteArray());
                early = pending.toByteArray();
                pending.reset();
                phase = Phase.RELAY;
                if (early.length > 0) {
                    try {
                        connection.writeRaw(early, 0, early.length);
                    } catch (IOException e) {
                        shutdown();
                        return;
                    }
                }
            }
            byte[] buffer = new byte[64 * 1024];
            try {
                while (true) {
                    int n = connection.readRaw(buffer);
                    if (n < 0) {
                        break;
                    }
                    if (n > 0) {
                        send(java.util.Arrays.copyOf(buffer, n));
                    }
                }
            } catch (IOException e) {
                log.debug("WebSocket relay {} ended: {}", id, e.getMessage());
            }
            // the backend ended the session (Terminate, FATAL error, shutdown): end the WebSocket too, as Neon does
            shutdown();
        }

        /**
         * The login was checked: the session takes a share of its database and gets the normal limits. False (and
         * nothing taken) when the database's share is used up or the session has closed.
         */
        private boolean admitLoggedIn() {
            synchronized (this) {
                if (phase == Phase.CLOSED) {
                    return false;
                }
                if (!sessions.enter(databaseId)) {
                    return false;
                }
                databaseAdmitted = true;
                loggedIn = true;
                pendingLogin = false;
                pendingLogins.leave(clientAddress);
            }
            ScheduledFuture<?> pendingDeadline = deadline;
            if (pendingDeadline != null) {
                pendingDeadline.cancel(false);
            }
            session.setIdleTimeout(Duration.ofHours(1));
            session.setMaxBinaryMessageSize(broker.config.maxRequestBytes());
            return true;
        }

        /** The login deadline passed: a session that has not logged in is closed without an answer. */
        void loginExpired() {
            synchronized (this) {
                if (loggedIn || phase == Phase.CLOSED) {
                    return;
                }
            }
            log.debug("WebSocket session {} did not log in within {}; closing it", id, broker.config.loginTimeout());
            shutdown();
        }

        void cancel() {
            PgConnection connection;
            synchronized (this) {
                connection = backend;
            }
            if (connection != null) {
                connection.cancel();
            }
        }

        void fail(String sqlState, String message) {
            ByteArrayOutputStream error = new ByteArrayOutputStream();
            byte[] fields = ("SFATAL\0VFATAL\0C" + sqlState + "\0M" + message + "\0\0")
                    .getBytes(StandardCharsets.UTF_8);
            error.write('E');
            error.writeBytes(int32(4 + fields.length));
            error.writeBytes(fields);
            send(error.toByteArray());
            shutdown();
        }

        private void send(byte[] bytes) {
            synchronized (sendLock) {
                try {
                    if (session.isOpen()) {
                        session.getRemote().sendBytes(ByteBuffer.wrap(bytes));
                    }
                } catch (IOException | RuntimeException e) {
                    log.debug("WebSocket send on {} failed: {}", id, e.getMessage());
                }
            }
        }

        private void shutdown() {
            close();
            session.close(1000, "done");
        }

        /** Ends the session: a statement still running on the backend is cancelled first. Idempotent. */
        void close() {
            PgConnection connection;
            synchronized (this) {
                if (phase == Phase.CLOSED) {
                    return;
                }
                phase = Phase.CLOSED;
                connection = backend;
                backend = null;
                sessions.leave();
                if (pendingLogin) {
                    pendingLogin = false;
                    pendingLogins.leave(clientAddress);
                }
                if (databaseAdmitted) {
                    sessions.leave(databaseId);
                }
            }
            ScheduledFuture<?> pendingDeadline = deadline;
            if (pendingDeadline != null) {
                pendingDeadline.cancel(false);
            }
            if (connection != null) {
                byCancelKey.remove(cancelKey);
                // the relay does not track whether a statement runs: cancelling an idle backend is harmless
                connection.cancel();
                connection.close();
            }
            relays.remove(id, this);
        }
    }

    private static Map<String, String> parseStartup(byte[] buffer, int length) {
        Map<String, String> params = new LinkedHashMap<>();
        int at = 8;
        while (at < length && buffer[at] != 0) {
            int end = at;
            while (end < length && buffer[end] != 0) {
                end++;
            }
            String name = new String(buffer, at, end - at, StandardCharsets.UTF_8);
            at = end + 1;
            end = at;
            while (end < length && buffer[end] != 0) {
                end++;
            }
            params.put(name, new String(buffer, at, end - at, StandardCharsets.UTF_8));
            at = end + 1;
        }
        return params;
    }

    private static int int32(byte[] b, int at) {
        return ((b[at] & 0xff) << 24) | ((b[at + 1] & 0xff) << 16) | ((b[at + 2] & 0xff) << 8) | (b[at + 3] & 0xff);
    }

    private static byte[] int32(int value) {
        return new byte[] {(byte) (value >>> 24), (byte) (value >>> 16), (byte) (value >>> 8), (byte) value};
    }
}
