package io.palisade.spi;

import static java.util.Objects.requireNonNull;

import java.util.Optional;

/**
 * Where the proxy and the broker send one database's connections: the server's address, the names in the tenant's
 * connection URL, and the names the server knows the tenant by (equal to the URL's on the rungs with a server of their
 * own).
 */
public record Backend(Endpoint endpoint, String tenantUser, String tenantDatabase, ServerLogin serverLogin) {
    public Backend {
        requireNonNull(endpoint, "endpoint is null");
        requireNonNull(tenantUser, "tenantUser is null");
        requireNonNull(tenantDatabase, "tenantDatabase is null");
        requireNonNull(serverLogin, "serverLogin is null");
    }

    /** A backend that knows the tenant by its own names: logins pass through unchanged. */
    public static Backend direct(Endpoint endpoint) {
        return new Backend(endpoint, "", "", new ServerLogin("", ""));
    }

    /** Whether the client's user and database names must be rewritten before they reach the server. */
    public boolean rewrites() {
        return !serverLogin.user().equals(tenantUser) || !serverLogin.database().equals(tenantDatabase);
    }

    /**
     * The login to send to the server for a client's {@code user} and {@code database}, or empty when they are not the
     * tenant's (the caller answers exactly as for a wrong password). On a shared server nothing but the tenant's own
     * database is reachable through palisade, whatever grants its neighbours made.
     */
    public Optional<ServerLogin> map(String user, String database) {
        if (!rewrites()) {
            return Optional.of(new ServerLogin(user, database));
        }
        if (!tenantUser.equals(user) || !tenantDatabase.equals(database)) {
            return Optional.empty();
        }
        return Optional.of(serverLogin);
    }
}
