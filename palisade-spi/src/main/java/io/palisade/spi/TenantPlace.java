package io.palisade.spi;

import static java.util.Objects.requireNonNull;

/**
 * Where a running instance keeps one tenant's objects, and how palisade reaches them as a superuser: what a move between
 * rungs reads from its source and writes into its target.
 *
 * @param admin the server's management superuser (see {@link AdminAccess}); connect to {@link #database} with it
 * @param database the database holding the tenant's objects on that server
 * @param namespace the schema holding them ({@code public} on a rung of its own, {@code tenant_…} on the schema rung)
 * @param role the role that owns them (the tenant's login on that server)
 * @param extensionSchema where the tenant's extensions live on that server
 * @param server the server's TCP address as this host reaches it (what another server on this host dials for logical
 *     replication; a microVM target reaches it through {@link IsolationDriver#routeToHost})
 */
public record TenantPlace(
        AdminAccess admin, String database, String namespace, String role, String extensionSchema, Endpoint server) {
    public TenantPlace {
        requireNonNull(admin, "admin is null");
        requireNonNull(database, "database is null");
        requireNonNull(namespace, "namespace is null");
        requireNonNull(role, "role is null");
        requireNonNull(extensionSchema, "extensionSchema is null");
        requireNonNull(server, "server is null");
    }
}
