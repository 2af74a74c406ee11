package io.palisade.spi;

import static java.util.Objects.requireNonNull;

/** The tenant's login. {@code toString} never prints the password. */
public record TenantCredentials(String username, String database, String password) {
    public TenantCredentials {
        requireNonNull(username, "username is null");
        requireNonNull(database, "database is null");
        requireNonNull(password, "password is null");
    }

    @Override
    public String toString() {
        return "TenantCredentials[username=" + username + ", database=" + database + ", password=***]";
    }
}
