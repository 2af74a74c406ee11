package io.palisade.spi;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;
import java.util.Optional;

/**
 * How palisade itself reaches a running instance's server as its management superuser, with replication rights (base
 * backups, WAL streaming, archive settings). Host-only: a Unix socket only palisade can open, or an address inside a
 * network namespace palisade created. {@code toString} never prints the password.
 */
public record AdminAccess(Transport transport, String user, Optional<String> password) {
    /** Where the server listens for the management connection. */
    public sealed interface Transport permits UnixSocket, Tcp {}

    /** The server's Unix socket file, e.g. {@code <dir>/.s.PGSQL.5432}. */
    public record UnixSocket(Path socketFile) implements Transport {
        public UnixSocket {
            requireNonNull(socketFile, "socketFile is null");
        }
    }

    public record Tcp(Endpoint endpoint) implements Transport {
        public Tcp {
            requireNonNull(endpoint, "endpoint is null");
        }
    }

    public AdminAccess {
        requireNonNull(transport, "transport is null");
        requireNonNull(user, "user is null");
        requireNonNull(password, "password is null");
    }

    @Override
    public String toString() {
        return "AdminAccess[" + transport + ", user=" + user + ", password=" + (password.isPresent() ? "***" : "none") + "]";
    }
}
