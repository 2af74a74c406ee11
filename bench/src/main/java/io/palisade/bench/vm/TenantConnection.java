package io.palisade.bench.vm;

import java.sql.Connection;
import java.sql.SQLException;

/**
 * Where a benchmark's load opens a tenant's connections: a driver-provisioned {@link Tenant} (straight to its
 * instance), or a database the API created, reached through the proxy with its returned URL.
 */
@FunctionalInterface
public interface TenantConnection {
    /** A new connection as the tenant. */
    Connection connect() throws SQLException;
}
