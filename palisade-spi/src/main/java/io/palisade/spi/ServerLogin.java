package io.palisade.spi;

import static java.util.Objects.requireNonNull;

/**
 * The role and database a server knows one tenant by. On the rungs with a server of their own these are the tenant's
 * own names ({@code app}/{@code app}); on the shared rungs they are internal names unique on the shared server, and the
 * proxy and the broker rewrite the client's login to them.
 */
public record ServerLogin(String user, String database) {
    public ServerLogin {
        requireNonNull(user, "user is null");
        requireNonNull(database, "database is null");
    }
}
