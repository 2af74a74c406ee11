package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.Optional;

/**
 * What every connection of this module offers over its logged-in session: server parameters, the backend pid, cancel
 * key and SCRAM server nonce, the read timeout, whether it is open. A connection is used by one thread at a time;
 * {@code close} may come from any thread.
 */
public abstract sealed class WireConnection implements AutoCloseable permits PgConnection, ReplicationConnection {
    final WireSession session;

    WireConnection(WireSession session) {
        this.session = requireNonNull(session, "session is null");
    }

    /** A server parameter reported at login or since ({@code server_version}, {@code TimeZone}, ...). */
    public Optional<String> parameterStatus(String name) {
        return session.parameter(name);
    }

    /** The server process id serving this connection ({@code pg_backend_pid()}). */
    public int backendPid() {
        return session.backendPid();
    }

    /**
     * The secret key of this session's cancel requests (BackendKeyData; 0 if the server sent none). The server draws
     * it from its strong random source, so two servers that hand out the same keys share that source's state.
     */
    public int cancelKey() {
        return session.backendKey();
    }

    /**
     * The server's part of the SCRAM nonce of this login; empty when the server asked for another method. Drawn from
     * the server's strong random source, like the cancel key.
     */
    public Optional<String> scramServerNonce() {
        return session.scramServerNonce();
    }

    public PgTarget target() {
        return session.target();
    }

    public Duration readTimeout() {
        return session.readTimeout();
    }

    /** How long any one wait for the server may last before the call fails and the connection closes; 0 = forever. */
    public void setReadTimeout(Duration timeout) {
        session.readTimeout(timeout);
    }

    public boolean isOpen() {
        return session.isOpen();
    }

    @Override
    public abstract void close();
}
