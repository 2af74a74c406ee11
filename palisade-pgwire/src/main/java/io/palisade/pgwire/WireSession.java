package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.EOFException;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One logged-in protocol-v3 session, shared by {@link PgConnection} and {@link ReplicationConnection}: startup and
 * authentication, the simple-query loop, errors with context. Any I/O failure or timeout closes the session (the
 * protocol state is unknown afterwards) and surfaces as a {@link PalisadeException} naming the server and the step.
 * Thread-confined, except {@link #close()} and {@link #cancel()}.
 */
final class WireSession implements AutoCloseable {
    static final Duration DEFAULT_READ_TIMEOUT = Duration.ofMinutes(2);
    private static final Logger LOG = LoggerFactory.getLogger(WireSession.class);
    private static final int CANCEL_REQUEST_CODE = 80877102;

    private final PgTarget target;
    private final String user;
    private final PgStream stream;
    private final MessageWriter writer = new MessageWriter();
    private final Map<String, String> parameters = new HashMap<>();
    private volatile Duration readTimeout = DEFAULT_READ_TIMEOUT;
    private int backendPid;
    private int backendKey;
    private String scramServerNonce;
    private char transactionStatus = 'I';

    private WireSession(PgTarget target, String user, PgStream stream) {
        this.target = target;
        this.user = user;
        this.stream = stream;
    }

    static WireSession open(PgTarget target, String user, Optional<String> password,
            Map<String, String> startupParameters, Duration connectTimeout) {
        requireNonNull(target, "target is null");
        requireNonNull(user, "user is null");
        requireNonNull(password, "password is null");
        requireNonNull(startupParameters, "startupParameters is null");
        requireNonNull(connectTimeout, "connectTimeout is null");
        PgStream stream;
        try {
            stream = PgStream.connect(target, connectTimeout);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot connect to PostgreSQL at " + target + ": "
                    + reason(e) + "; check that the server is running and listens there", e);
        }
        WireSession session = new WireSession(target, user, stream);
        try {
            session.login(password, startupParameters, PgStream.deadline(connectTimeout));
            return session;
        } catch (RuntimeException e) {
            session.close();
            throw e;
        }
    }

    private void login(Optional<String> password, Map<String, String> startupParameters, long deadline) {
        Map<String, String> startup = new LinkedHashMap<>();
        startup.put("user", user);
        startup.put("client_encoding", "UTF8");
        startup.put("application_name", "palisade");
        startup.putAll(startupParameters);
        startup.put("user", user);
        writer.reset().startUntyped().int32(PgMessages.PROTOCOL_3_0);
        startup.forEach((name, value) -> writer.cstring(name).cstring(value));
        writer.int8(0).end();
        flush("sending the startup message");
        ScramClient scram = null;
        while (true) {
            if (!receive(deadline, "logging in as " + user)) {
                close();
                throw new PalisadeException(ErrorCode.TIMEOUT, "PostgreSQL at " + target + " did not finish the login"
                        + " of " + user + " in time; check the server's load and its log");
            }
            byte[] body = stream.buffer();
            int at = stream.bodyOffset();
            int length = stream.bodyLength();
            switch (stream.type()) {
                case 'R' -> {
                    int code = Bytes.int32(body, at);
                    switch (code) {
                        case 0 -> {}
                        case 3 -> sendPassword(requirePassword(password, "a cleartext password"));
                        case 5 -> sendPassword(Md5Password.response(requirePassword(password, "an MD5 password"),
                                user, Arrays.copyOfRange(body, at + 4, at + 8)));
                        case 10 -> {
                            String mechanisms = Bytes.utf8(body, at + 4, length - 4);
                            if (!Arrays.asList(mechanisms.split("\0")).contains(ScramClient.MECHANISM)) {
                                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "PostgreSQL at " + target
                                        + " offers SASL mechanisms [" + mechanisms.replace('\0', ' ').trim()
                                        + "] but not " + ScramClient.MECHANISM + "; palisade supports only that one");
                            }
                            scram = new ScramClient(requirePassword(password, "a SCRAM password"));
                            byte[] first = scram.clientFirstMessage().getBytes(StandardCharsets.UTF_8);
                            writer.reset().start('p').cstring(ScramClient.MECHANISM).int32(first.length)
                                    .bytes(first, 0, first.length).end();
                            flush("sending SCRAM client-first");
                        }
                        case 11 -> {
                            if (scram == null) {
                                throw protocolViolation("SASLContinue before SASL started");
                            }
                            byte[] last = scram.clientFinalMessage(Bytes.utf8(body, at + 4, length - 4))
                                    .getBytes(StandardCharsets.UTF_8);
                            scramServerNonce = scram.serverNonce();
                            writer.reset().start('p').bytes(last, 0, last.length).end();
                            flush("sending SCRAM client-final");
                        }
                        case 12 -> {
                            if (scram == null || !scram.verifyServerFinal(Bytes.utf8(body, at + 4, length - 4))) {
                                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the server at " + target
                                        + " failed SCRAM server authentication (its signature does not match our"
                                        + " password): it may not be the server you meant to reach");
                            }
                        }
                        default -> throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "PostgreSQL at " + target
                                + " asks for authentication method " + code + ", which palisade does not support"
                                + " (trust, password, md5 and scram-sha-256 are supported); change pg_hba.conf");
                    }
                }
                case 'S' -> parameterStatus();
                case 'K' -> {
                    backendPid = Bytes.int32(body, at);
                    backendKey = length >= 8 ? Bytes.int32(body, at + 4) : 0;
                }
                case 'E' -> throw PgServerException.parse(body, at, length);
                case 'N' -> notice();
                case 'v' -> {}
                case 'Z' -> {
                    transactionStatus = (char) body[at];
                    return;
                }
                default -> throw protocolViolation("unexpected message '" + stream.type() + "' while logging in");
            }
        }
    }

    private String requirePassword(Optional<String> password, String what) {
        return password.orElseThrow(() -> new PalisadeException(ErrorCode.UNAUTHENTICATED, "PostgreSQL at " + target
                + " asks " + user + " for " + what + " but none was given; pass the role's password or allow"
                + " trust for this connection in pg_hba.conf"));
    }

    private void sendPassword(String password) {
        writer.reset().start('p').cstring(password).end();
        flush("sending the password");
    }

    /** Runs a simple query (possibly several statements) and returns every result, in order. */
    List<Result> simpleQuery(String sql) {
        requireNonNull(sql, "sql is null");
        sendQuery(sql);
        return readResults(sql);
    }

    void sendQuery(String sql) {
        writer.reset().start('Q').cstring(sql).end();
        flush("sending a query");
    }

    /** Reads results until ReadyForQuery; throws the first server error after the server is ready again. */
    List<Result> readResults(String what) {
        return readResults(what, false);
    }

    /** As {@link #readResults(String)}; with {@code fromCurrent}, the message already read is the first one. */
    List<Result> readResults(String what, boolean fromCurrent) {
        List<Result> results = new ArrayList<>(1);
        ResultBuilder current = new ResultBuilder();
        PgServerException error = null;
        boolean inCopyOut = false;
        boolean skipReceive = fromCurrent;
        while (true) {
            if (!skipReceive) {
                receive(what);
            }
            skipReceive = false;
            switch (stream.type()) {
                case 'T' -> current.columns(this);
                case 'D' -> current.row(this);
                case 'C' -> {
                    results.add(current.complete(commandTag()));
                    current = new ResultBuilder();
                }
                case 'I', 'A', '1', '2', '3', 'n', 't', 's' -> {}
                case 'E' -> {
                    if (error == null) {
                        error = error();
                    }
                }
                case 'N' -> notice();
                case 'S' -> parameterStatus();
                case 'H' -> inCopyOut = true;
                case 'd' -> {
                    if (!inCopyOut) {
                        throw protocolViolation("CopyData outside COPY");
                    }
                }
                case 'c' -> inCopyOut = false;
                case 'G' -> {
                    writer.reset().start('f').cstring("COPY FROM STDIN is not supported by this client").end();
                    flush("refusing COPY FROM STDIN");
                }
                case 'W' -> throw protocolViolation("the statement started streaming replication; use "
                        + "ReplicationConnection.startPhysical for START_REPLICATION");
                case 'Z' -> {
                    transactionStatus = (char) stream.buffer()[stream.bodyOffset()];
                    if (error != null) {
                        throw error;
                    }
                    return results;
                }
                default -> throw protocolViolation("unexpected message '" + stream.type() + "' in a query result");
            }
        }
    }

    /** Reads the next message within the read timeout, or closes the session and throws. */
    void receive(String what) {
        Duration timeout = readTimeout;
        if (!receive(PgStream.deadline(timeout), what)) {
            close();
            throw new PalisadeException(ErrorCode.TIMEOUT, "PostgreSQL at " + target + " did not answer within "
                    + timeout + " while " + what + "; the connection is closed: retry, or raise the read timeout");
        }
    }

    /** Reads the next message before the deadline; false (consuming nothing) if it passed. */
    boolean receive(long deadline, String what) {
        try {
            return stream.read(deadline);
        } catch (IOException e) {
            throw ioFailure(what, e);
        }
    }

    /** Sends what the writer holds. */
    void flush(String what) {
        try {
            stream.write(writer.buffer(), 0, writer.size(), PgStream.deadline(readTimeout));
        } catch (IOException e) {
            throw ioFailure(what, e);
        }
    }

    MessageWriter writer() {
        return writer.reset();
    }

    PgStream stream() {
        return stream;
    }

    PalisadeException ioFailure(String what, IOException e) {
        boolean closedByUs = stream.isClosed();
        close();
        String state = closedByUs ? "the connection was closed" : reason(e);
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "lost the connection to PostgreSQL at " + target
                + " while " + what + ": " + state + "; reconnect and retry", e);
    }

    PalisadeException protocolViolation(String message) {
        close();
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "protocol violation from PostgreSQL at " + target
                + ": " + message + "; the connection is closed");
    }

    private static String reason(IOException e) {
        if (e instanceof EOFException) {
            return "the server closed the connection";
        }
        if (e instanceof SocketTimeoutException) {
            return "timed out";
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    PgServerException error() {
        return PgServerException.parse(stream.buffer(), stream.bodyOffset(), stream.bodyLength());
    }

    String commandTag() {
        byte[] body = stream.buffer();
        int at = stream.bodyOffset();
        int nul = Bytes.nul(body, at, at + stream.bodyLength());
        return Bytes.utf8(body, at, (nul < 0 ? at + stream.bodyLength() : nul) - at);
    }

    void parameterStatus() {
        byte[] body = stream.buffer();
        int at = stream.bodyOffset();
        int limit = at + stream.bodyLength();
        int nameEnd = Bytes.nul(body, at, limit);
        int valueEnd = nameEnd < 0 ? -1 : Bytes.nul(body, nameEnd + 1, limit);
        if (valueEnd < 0) {
            throw protocolViolation("malformed ParameterStatus");
        }
        parameters.put(Bytes.utf8(body, at, nameEnd - at), Bytes.utf8(body, nameEnd + 1, valueEnd - nameEnd - 1));
    }

    void notice() {
        if (LOG.isDebugEnabled()) {
            LOG.debug("notice from {}: {}", target, error().getMessage());
        }
    }

    /**
     * Sends a CancelRequest for whatever this session runs now, on a separate connection, and returns once the server
     * has acted on it (or after 5 s). Safe from any thread.
     */
    void cancel() {
        byte[] message = new MessageWriter().startUntyped().int32(CANCEL_REQUEST_CODE).int32(backendPid)
                .int32(backendKey).end().toByteArray();
        try (PgStream cancel = PgStream.connect(target, Duration.ofSeconds(5))) {
            cancel.write(message, 0, message.length, PgStream.deadline(Duration.ofSeconds(5)));
            // As libpq's PQcancel does: wait until the server closes the socket, which it does once it has signalled
            // the backend. Returning earlier lets a late signal cancel the caller's next statement instead.
            cancel.read(PgStream.deadline(Duration.ofSeconds(5)));
        } catch (EOFException e) {
            // the server processed the request and closed the socket
        } catch (IOException e) {
            LOG.debug("cancel request to {} failed: {}", target, e.toString());
        }
    }

    Optional<String> parameter(String name) {
        return Optional.ofNullable(parameters.get(name));
    }

    Map<String, String> parameters() {
        return Collections.unmodifiableMap(parameters);
    }

    int backendPid() {
        return backendPid;
    }

    int backendKey() {
        return backendKey;
    }

    Optional<String> scramServerNonce() {
        return Optional.ofNullable(scramServerNonce);
    }

    char transactionStatus() {
        return transactionStatus;
    }

    PgTarget target() {
        return target;
    }

    String user() {
        return user;
    }

    Duration readTimeout() {
        return readTimeout;
    }

    void readTimeout(Duration timeout) {
        requireNonNull(timeout, "timeout is null");
        if (timeout.isNegative()) {
            throw new IllegalArgumentException("read timeout cannot be negative: " + timeout);
        }
        this.readTimeout = timeout;
    }

    boolean isOpen() {
        return !stream.isClosed();
    }

    /** Closes the socket at once (no Terminate). Idempotent; safe from any thread. */
    @Override
    public void close() {
        stream.close();
    }

    /** Sends Terminate, then closes. Only from the owning thread. */
    void terminate() {
        if (stream.isClosed()) {
            return;
        }
        try {
            byte[] terminate = {'X', 0, 0, 0, 4};
            stream.write(terminate, 0, terminate.length, PgStream.deadline(Duration.ofSeconds(1)));
        } catch (IOException e) {
            // closing anyway
        }
        stream.close();
    }

    /** One statement's result: column names (empty for commands without rows), rows and the command tag. */
    record Result(List<String> columns, List<Row> rows, String commandTag) {}

    private static final class ResultBuilder {
        private List<String> columns = List.of();
        private final List<Row> rows = new ArrayList<>();

        void columns(WireSession session) {
            columns = RowParser.columns(session);
            rows.clear();
        }

        void row(WireSession session) {
            rows.add(RowParser.row(session, columns));
        }

        Result complete(String tag) {
            return new Result(columns, List.copyOf(rows), tag);
        }
    }
}
