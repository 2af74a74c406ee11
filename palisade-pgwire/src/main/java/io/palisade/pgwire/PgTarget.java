package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.AdminAccess;
import io.palisade.spi.Endpoint;
import java.nio.file.Path;

/** Where a PostgreSQL server listens: a TCP address or a Unix socket file ({@code <dir>/.s.PGSQL.<port>}). */
public sealed interface PgTarget permits PgTarget.Tcp, PgTarget.UnixSocket {
    record Tcp(String host, int port) implements PgTarget {
        public Tcp {
            requireNonNull(host, "host is null");
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("port out of range: " + port);
            }
        }

        @Override
        public String toString() {
            return host.contains(":") ? "[" + host + "]:" + port : host + ":" + port;
        }
    }

    record UnixSocket(Path socketFile) implements PgTarget {
        public UnixSocket {
            requireNonNull(socketFile, "socketFile is null");
        }

        @Override
        public String toString() {
            return "unix:" + socketFile;
        }
    }

    static PgTarget tcp(Endpoint endpoint) {
        return new Tcp(endpoint.host(), endpoint.port());
    }

    static PgTarget of(AdminAccess.Transport transport) {
        return switch (requireNonNull(transport, "transport is null")) {
            case AdminAccess.UnixSocket unix -> new UnixSocket(unix.socketFile());
            case AdminAccess.Tcp tcp -> tcp(tcp.endpoint());
        };
    }

    static PgTarget of(AdminAccess access) {
        return of(access.transport());
    }
}
