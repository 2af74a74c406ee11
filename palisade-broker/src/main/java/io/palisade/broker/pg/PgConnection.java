package io.palisade.broker.pg;

import static java.util.Objects.requireNonNull;

import io.palisade.pgwire.Md5Password;
import io.palisade.pgwire.MessageWriter;
import io.palisade.pgwire.ScramClient;
import io.palisade.spi.Endpoint;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * A small PostgreSQL v3 protocol client on a blocking socket: SCRAM-SHA-256 (or MD5/cleartext) login, the extended
 * protocol with one unnamed statement and text values, the simple protocol, and CancelRequest. Values stay in their
 * exact text form; RowDescription is kept as sent. Not thread-safe: one caller at a time, except {@link #cancel()}.
 *
 * <p>While waiting for the server it wakes every {@value #TICK_MILLIS} ms to check a {@link Guard}: past the deadline
 * it sends a CancelRequest and waits a short grace for the server's error; when the client has gone, or the response
 * outgrows its byte budget, it cancels and closes at once. A connection that was cancelled or closed is
 * {@linkplain #isReusable() not reusable}.
 *
 * <p>Memory is bounded before it is allocated: each message's length header is checked against what is left of the
 * response budget (a DataRow) or the budget itself (any other message) before its body is read, so a single huge
 * value ends the statement with {@link Aborted.Reason#RESPONSE_TOO_LARGE} after reading only its header. Rows past the
 * row cap and oversized notices are skipped without being kept; login messages are capped at
 * {@value #MAX_LOGIN_MESSAGE_BYTES} bytes.
 */
public final class PgConnection implements AutoCloseable {
    private static final int CANCEL_REQUEST_CODE = 80877102;
    private static final int TICK_MILLIS = 200;
    private static final long TIMEOUT_GRACE_NANOS = Duration.ofSeconds(2).toNanos();
    /** Largest message accepted while logging in (authentication requests, parameters, errors). */
    public static final int MAX_LOGIN_MESSAGE_BYTES = 64 * 1024;
    /** Notices and parameter reports bigger than this are skipped unread. */
    private static final int MAX_NOTICE_BYTES = 64 * 1024;
    /** The body buffer is given back after a statement that needed more than this. */
    private static final int KEPT_BODY_BYTES = 64 * 1024;

    private final Endpoint endpoint;
    private final Socket socket;
    private final InputStream in;
    private final OutputStream out;
    private final Map<String, String> parameters = new HashMap<>();
    private final byte[] readBuffer = new byte[64 * 1024];
    private int readPos;
    private int readLimit;
    private byte[] body = new byte[8 * 1024];
    private int bodyLength;
    private final MessageWriter writer = new MessageWriter();
    private int backendPid;
    private int backendKey;
    private char transactionStatus = 'I';
    private volatile boolean reusable = true;
    private volatile boolean closed;
    private volatile boolean cancelSent;
    private long cancelledAt;

    private PgConnection(Endpoint endpoint, Socket socket) throws IOException {
        this.endpoint = endpoint;
        this.socket = socket;
        this.in = socket.getInputStream();
        this.out = socket.getOutputStream();
    }

    /**
     * Opens a connection and logs in. {@code startup} must hold {@code user}; a wrong password surfaces as the
     * server's {@link PgError} (SQLSTATE class 28).
     */
    public static PgConnection connect(Endpoint endpoint, Map<String, String> startup, String password,
            Duration timeout) throws IOException {
        requireNonNull(endpoint, "endpoint is null");
        requireNonNull(startup, "startup is null");
        requireNonNull(password, "password is null");
        long deadline = System.nanoTime() + timeout.toNanos();
        Socket socket = new Socket();
        PgConnection connection = null;
        try {
            socket.setTcpNoDelay(true);
            socket.setKeepAlive(true);
            socket.connect(new InetSocketAddress(endpoint.host(), endpoint.port()), (int) timeout.toMillis());
            socket.setSoTimeout(TICK_MILLIS);
            connection = new PgConnection(endpoint, socket);
            connection.login(startup, password, new Guard(deadline, () -> false));
            return connection;
        } catch (IOException | RuntimeException e) {
            if (connection != null) {
                connection.closeQuietly();
            } else {
                socket.close();
            }
            throw e;
        }
    }

    private void login(Map<String, String> startup, String password, Guard guard) throws IOException {
        writer.reset();
        writer.startUntyped();
        writer.int32(io.palisade.pgwire.PgMessages.PROTOCOL_3_0);
        startup.forEach((name, value) -> {
            writer.cstring(name);
            writer.cstring(value);
        });
        writer.int8(0);
        writer.end();
        flush();
        ScramClient scram = null;
        while (true) {
            char type = readHeader(guard);
            if (bodyLength > MAX_LOGIN_MESSAGE_BYTES) {
                reusable = false;
                throw new IOException("the backend sent a " + bodyLength + "-byte '" + type + "' message while "
                        + "logging in; at most " + MAX_LOGIN_MESSAGE_BYTES + " bytes are accepted");
            }
            readBody(guard);
            switch (type) {
                case 'R' -> {
                    int code = int32(body, 0);
                    switch (code) {
                        case 0 -> {}
                        case 3 -> sendPassword(password.getBytes(StandardCharsets.UTF_8));
                        case 5 -> sendPassword(Md5Password.response(password, startup.get("user"),
                                java.util.Arrays.copyOfRange(body, 4, 8)).getBytes(StandardCharsets.UTF_8));
                        case 10 -> {
                            String mechanisms = new String(body, 4, bodyLength - 4, StandardCharsets.UTF_8);
                            if (!mechanisms.contains(ScramClient.MECHANISM + "\0")) {
                                throw new IOException("backend offers no SCRAM-SHA-256 (offers " + mechanisms
                                        .replace('\0', ' ').trim() + ")");
                            }
                            scram = new ScramClient(password);
                            byte[] first = scram.clientFirstMessage().getBytes(StandardCharsets.UTF_8);
                            writer.reset();
                            writer.start('p');
                            writer.cstring(ScramClient.MECHANISM);
                            writer.int32(first.length);
                            writer.bytes(first, 0, first.length);
                            writer.end();
                            flush();
                        }
                        case 11 -> {
                            if (scram == null) {
                                throw new IOException("backend sent SASLContinue before SASL started");
                            }
                            byte[] last = scram.clientFinalMessage(new String(body, 4, bodyLength - 4,
                                    StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8);
                            writer.reset();
                            writer.start('p');
                            writer.bytes(last, 0, last.length);
                            writer.end();
                            flush();
                        }
                        case 12 -> {
                            if (scram == null || !scram.verifyServerFinal(new String(body, 4, bodyLength - 4,
                                    StandardCharsets.UTF_8))) {
                                throw new IOException("backend's SCRAM server signature does not verify");
                            }
                        }
                        default -> throw new IOException("unsupported authentication request " + code);
                    }
                }
                case 'S' -> parameterStatus();
                case 'K' -> {
                    backendPid = int32(body, 0);
                    backendKey = bodyLength >= 8 ? int32(body, 4) : 0;
                }
                case 'E' -> {
                    // a FATAL error during startup is followed by the server closing the socket
                    reusable = false;
                    throw PgError.parse(body, bodyLength);
                }
                case 'N', 'v' -> {}
                case 'Z' -> {
                    transactionStatus = (char) body[0];
                    return;
                }
                default -> throw new IOException("unexpected message '" + type + "' during login");
            }
        }
    }

    private void sendPassword(byte[] password) throws IOException {
        writer.reset();
        writer.start('p');
        writer.bytes(password, 0, password.length);
        writer.int8(0);
        writer.end();
        flush();
    }

    /**
     * Runs one statement with the extended protocol (unnamed statement and portal, parameter types inferred, all
     * values text). At most {@code maxRows} rows are kept (0 = no cap); {@code truncated} tells whether more existed.
     */
    public QueryResult execute(String sql, List<String> params, int maxRows, long maxBytes, Guard guard)
            throws IOException {
        refuseNul(sql);
        writer.reset();
        writer.start('P');
        writer.cstring("");
        writer.cstring(sql);
        writer.int16(0);
        writer.end();
        writer.start('B');
        writer.cstring("");
        writer.cstring("");
        writer.int16(0);
        writer.int16(params.size());
        for (String param : params) {
            if (param == null) {
                writer.int32(-1);
            } else {
                byte[] value = param.getBytes(StandardCharsets.UTF_8);
                writer.int32(value.length);
                writer.bytes(value, 0, value.length);
            }
        }
        writer.int16(0);
        writer.end();
        writer.start('D');
        writer.int8('P');
        writer.cstring("");
        writer.end();
        writer.start('E');
        writer.cstring("");
        writer.int32(maxRows > 0 ? maxRows + 1 : 0);
        writer.end();
        writer.start('S');
        writer.end();
        flush();
        List<QueryResult> results = readResults(maxRows, maxBytes, guard);
        if (results.isEmpty()) {
            throw new IOException("backend sent no result for an extended-protocol query");
        }
        return results.getFirst();
    }

    /** Runs a (possibly multi-statement) script with the simple protocol; one result per statement. */
    public List<QueryResult> simpleQuery(String sql, int maxRows, long maxBytes, Guard guard) throws IOException {
        refuseNul(sql);
        writer.reset();
        writer.start('Q');
        writer.cstring(sql);
        writer.end();
        flush();
        return readResults(maxRows, maxBytes, guard);
    }

    /** SQL text cannot carry NUL in the protocol: answer as PostgreSQL does for a NUL in text. */
    private static void refuseNul(String sql) {
        if (sql.indexOf('\0') >= 0) {
            throw new PgError(java.util.Map.of('S', "ERROR", 'V', "ERROR", 'C', "22021",
                    'M', "invalid byte sequence for encoding \"UTF8\": 0x00"));
        }
    }

    private List<QueryResult> readResults(int maxRows, long maxBytes, Guard guard) throws IOException {
        try {
            return readResultsWithin(maxRows, maxBytes, guard);
        } finally {
            if (body.length > KEPT_BODY_BYTES) {
                body = new byte[8 * 1024];
            }
        }
    }

    private List<QueryResult> readResultsWithin(int maxRows, long maxBytes, Guard guard) throws IOException {
        List<QueryResult> results = new ArrayList<>(1);
        List<Field> fields = List.of();
        List<byte[]> rows = new ArrayList<>();
        boolean truncated = false;
        long bytes = 0;
        PgError error = null;
        while (true) {
            char type = readHeader(guard);
            if (type == 'D') {
                if (maxRows > 0 && rows.size() >= maxRows) {
                    truncated = true;
                    skipBody(guard);
                    continue;
                }
                if (bytes + bodyLength + 8L > maxBytes) {
                    abort(Aborted.Reason.RESPONSE_TOO_LARGE);
                }
            } else if ((type == 'N' || type == 'A' || type == 'S') && bodyLength > MAX_NOTICE_BYTES) {
                skipBody(guard);
                continue;
            } else if (bodyLength > maxBytes - bytes) {
                abort(Aborted.Reason.RESPONSE_TOO_LARGE);
            }
            readBody(guard);
            switch (type) {
                case 'T' -> {
                    fields = rowDescription();
                    bytes += 64L * fields.size();
                }
                case 'D' -> {
                    rows.add(java.util.Arrays.copyOf(body, bodyLength));
                    bytes += bodyLength + 8L;
                }
                case 'C' -> {
                    results.add(new QueryResult(fields, rows, cstringAt(0), truncated));
                    fields = List.of();
                    rows = new ArrayList<>();
                    truncated = false;
                }
                case 's' -> {
                    results.add(new QueryResult(fields, rows, "SELECT " + rows.size(), true));
                    fields = List.of();
                    rows = new ArrayList<>();
                    truncated = false;
                }
                case 'I' -> results.add(new QueryResult(List.of(), List.of(), "", false));
                case 'n' -> fields = List.of();
                case '1', '2', '3', 't', 'N', 'A', 'd', 'c' -> {}
                case 'S' -> parameterStatus();
                case 'G' -> {
                    // COPY FROM STDIN has no data source over HTTP: refuse it so the server ends the COPY
                    writer.reset();
                    writer.start('f');
                    writer.cstring("COPY FROM STDIN is not supported by the SQL-over-HTTP broker");
                    writer.end();
                    flush();
                }
                case 'H', 'W' -> {}
                case 'E' -> {
                    if (error == null) {
                        error = PgError.parse(body, bodyLength);
                    }
                }
                case 'Z' -> {
                    transactionStatus = (char) body[0];
                    if (error != null) {
                        throw error;
                    }
                    return results;
                }
                default -> {
                    reusable = false;
                    throw new IOException("unexpected message '" + type + "' from the backend");
                }
            }
        }
    }

    private List<Field> rowDescription() {
        int count = int16(body, 0);
        List<Field> fields = new ArrayList<>(count);
        int at = 2;
        for (int i = 0; i < count; i++) {
            int end = at;
            while (body[end] != 0) {
                end++;
            }
            String name = new String(body, at, end - at, StandardCharsets.UTF_8);
            at = end + 1;
            fields.add(new Field(name, int32(body, at), int16(body, at + 4), int32(body, at + 6),
                    (short) int16(body, at + 10), int32(body, at + 12)));
            at += 18;
        }
        return Collections.unmodifiableList(fields);
    }

    private void parameterStatus() {
        int end = 0;
        while (body[end] != 0) {
            end++;
        }
        String name = new String(body, 0, end, StandardCharsets.UTF_8);
        parameters.put(name, cstringAt(end + 1));
    }

    private String cstringAt(int at) {
        int end = at;
        while (end < bodyLength && body[end] != 0) {
            end++;
        }
        return new String(body, at, end - at, StandardCharsets.UTF_8);
    }

    /** Reads a message's type and length (into {@code bodyLength}); the body is still unread. */
    private char readHeader(Guard guard) throws IOException {
        int type = readByte(guard);
        int length = (readByte(guard) << 24) | (readByte(guard) << 16) | (readByte(guard) << 8) | readByte(guard);
        if (length < 4) {
            reusable = false;
            throw new IOException("corrupt message length " + length + " from the backend");
        }
        bodyLength = length - 4;
        return (char) type;
    }

    /** Skips the body of the message whose header was just read, keeping nothing. */
    private void skipBody(Guard guard) throws IOException {
        int left = bodyLength;
        while (left > 0) {
            if (readPos == readLimit) {
                fill(guard);
            }
            int n = Math.min(left, readLimit - readPos);
            readPos += n;
            left -= n;
        }
        bodyLength = 0;
    }

    /** Reads the body of the message whose header was just read into {@code body} (the caller checked its size). */
    private void readBody(Guard guard) throws IOException {
        if (body.length < bodyLength) {
            long doubled = body.length * 2L;
            body = new byte[doubled >= bodyLength && doubled <= KEPT_BODY_BYTES ? (int) doubled : bodyLength];
        }
        int at = 0;
        while (at < bodyLength) {
            if (readPos == readLimit) {
                fill(guard);
            }
            int n = Math.min(bodyLength - at, readLimit - readPos);
            System.arraycopy(readBuffer, readPos, body, at, n);
            readPos += n;
            at += n;
        }
    }

    private int readByte(Guard guard) throws IOException {
        if (readPos == readLimit) {
            fill(guard);
        }
        return readBuffer[readPos++] & 0xff;
    }

    private void fill(Guard guard) throws IOException {
        while (true) {
            int n;
            try {
                n = in.read(readBuffer, 0, readBuffer.length);
            } catch (SocketTimeoutException e) {
                check(guard);
                continue;
            } catch (IOException e) {
                reusable = false;
                throw e;
            }
            if (n < 0) {
                reusable = false;
                throw new EOFException("the backend closed the connection");
            }
            if (n > 0) {
                readPos = 0;
                readLimit = n;
                return;
            }
        }
    }

    private void check(Guard guard) throws IOException {
        long now = System.nanoTime();
        if (guard.clientGone().getAsBoolean()) {
            abort(Aborted.Reason.CLIENT_GONE);
        }
        if (now - guard.deadlineNanos() > 0) {
            if (!cancelSent) {
                cancelSent = true;
                cancelledAt = now;
                reusable = false;
                cancel();
            } else if (now - cancelledAt > TIMEOUT_GRACE_NANOS) {
                abort(Aborted.Reason.TIMEOUT);
            }
        }
    }

    private void abort(Aborted.Reason reason) throws Aborted {
        reusable = false;
        if (!cancelSent) {
            cancelSent = true;
            cancel();
        }
        closeQuietly();
        throw new Aborted(reason);
    }

    /** Sends a CancelRequest for whatever this connection runs now, on a separate socket. Safe from any thread. */
    public void cancel() {
        reusable = false;
        try (Socket cancel = new Socket()) {
            cancel.connect(new InetSocketAddress(endpoint.host(), endpoint.port()), 2000);
            byte[] message = new MessageWriter().startUntyped().int32(CANCEL_REQUEST_CODE).int32(backendPid)
                    .int32(backendKey).end().toByteArray();
            cancel.getOutputStream().write(message);
            cancel.getOutputStream().flush();
        } catch (IOException e) {
            // best effort: the socket close that follows ends the backend anyway
        }
    }

    private void flush() throws IOException {
        try {
            out.write(writer.buffer(), 0, writer.size());
            out.flush();
        } catch (IOException e) {
            reusable = false;
            throw e;
        }
    }

    /** Writes raw protocol bytes (for the WebSocket relay). */
    public void writeRaw(byte[] bytes, int offset, int length) throws IOException {
        out.write(bytes, offset, length);
        out.flush();
    }

    /** Reads raw protocol bytes (for the WebSocket relay): first whatever is buffered, then from the socket. */
    public int readRaw(byte[] target) throws IOException {
        if (readPos < readLimit) {
            int n = Math.min(target.length, readLimit - readPos);
            System.arraycopy(readBuffer, readPos, target, 0, n);
            readPos += n;
            return n;
        }
        socket.setSoTimeout(0);
        return in.read(target);
    }

    public Map<String, String> parameters() {
        return Collections.unmodifiableMap(parameters);
    }

    public int backendPid() {
        return backendPid;
    }

    public int backendKey() {
        return backendKey;
    }

    public Endpoint endpoint() {
        return endpoint;
    }

    /** 'I' idle, 'T' in a transaction, 'E' in a failed transaction (from the last ReadyForQuery). */
    public char transactionStatus() {
        return transactionStatus;
    }

    public boolean isReusable() {
        return reusable && !closed && !cancelSent;
    }

    /** Sends Terminate and closes the socket. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (reusable && !cancelSent) {
            try {
                out.write(new byte[] {'X', 0, 0, 0, 4});
                out.flush();
            } catch (IOException e) {
                // closing anyway
            }
        }
        closeQuietly();
    }

    private void closeQuietly() {
        closed = true;
        reusable = false;
        try {
            socket.close();
        } catch (IOException e) {
            // nothing to do
        }
    }

    static int int32(byte[] b, int at) {
        return ((b[at] & 0xff) << 24) | ((b[at + 1] & 0xff) << 16) | ((b[at + 2] & 0xff) << 8) | (b[at + 3] & 0xff);
    }

    static int int16(byte[] b, int at) {
        return ((b[at] & 0xff) << 8) | (b[at + 1] & 0xff);
    }

    /** When to give up on the server: a deadline (System.nanoTime) and a probe for a vanished client. */
    public record Guard(long deadlineNanos, BooleanSupplier clientGone) {
        public Guard {
            requireNonNull(clientGone, "clientGone is null");
        }

        public static Guard timeout(Duration timeout) {
            return new Guard(System.nanoTime() + timeout.toNanos(), () -> false);
        }
    }

    /** The broker stopped waiting for a statement; the connection has been cancelled and closed. */
    public static final class Aborted extends IOException {
        public enum Reason {
            CLIENT_GONE,
            RESPONSE_TOO_LARGE,
            TIMEOUT
        }

        private final Reason reason;

        Aborted(Reason reason) {
            super("statement aborted: " + reason.name().toLowerCase(java.util.Locale.ROOT).replace('_', ' '));
            this.reason = reason;
        }

        public Reason reason() {
            return reason;
        }
    }
}
