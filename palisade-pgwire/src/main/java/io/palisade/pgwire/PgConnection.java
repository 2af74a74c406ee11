package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.AdminAccess;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A blocking PostgreSQL connection speaking the simple-query protocol with text results: enough for palisade's own
 * management statements. Logs in with trust, cleartext, MD5 or SCRAM-SHA-256 (no TLS: loopback, Unix sockets and
 * palisade's own network namespaces only).
 *
 * <p>Thread-confined: one thread uses it at a time. {@link #cancel()} and {@link #close()} may be called from any
 * thread (close aborts a blocked call, which then fails). A server error ({@link PgServerException}) leaves the
 * connection usable; an I/O failure or read timeout closes it.
 */
public final class PgConnection extends WireConnection {
    /** How long a call waits for the server by default; see {@link #setReadTimeout(Duration)}. */
    public static final Duration DEFAULT_READ_TIMEOUT = WireSession.DEFAULT_READ_TIMEOUT;

    private PgConnection(WireSession session) {
        super(session);
    }

    /**
     * Connects and logs in. {@code startupParameters} usually hold {@code database}; {@code client_encoding} is always
     * UTF8 and {@code application_name} defaults to {@code palisade}.
     */
    public static PgConnection open(PgTarget target, String user, Optional<String> password,
            Map<String, String> startupParameters, Duration connectTimeout) {
        return new PgConnection(WireSession.open(target, user, password, startupParameters, connectTimeout));
    }

    /** Connects as palisade's management user of an instance to {@code database}. */
    public static PgConnection open(AdminAccess access, String database, Duration connectTimeout) {
        requireNonNull(access, "access is null");
        requireNonNull(database, "database is null");
        return open(PgTarget.of(access), access.user(), access.password(), Map.of("database", database),
                connectTimeout);
    }

    /**
     * Runs one or more statements (separated by semicolons, in one implicit transaction unless they say otherwise) and
     * returns the rows of the last one (empty for commands). A server error is thrown once the server is ready again.
     */
    public List<Row> simpleQuery(String sql) {
        List<WireSession.Result> results = session.simpleQuery(sql);
        return results.isEmpty() ? List.of() : results.getLast().rows();
    }

    /** Runs one or more statements, ignoring any rows. */
    public void execute(String sql) {
        session.simpleQuery(sql);
    }

    /** Asks the server to cancel the statement running now (the call then fails with SQLSTATE 57014). */
    public void cancel() {
        session.cancel();
    }

    /**
     * Closes the connection. Idempotent. From the owning thread it says goodbye (Terminate) first; from another
     * thread it aborts whatever the owner is blocked on.
     */
    @Override
    public void close() {
        session.terminate();
    }
}
