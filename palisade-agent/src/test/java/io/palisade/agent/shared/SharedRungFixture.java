package io.palisade.agent.shared;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Cgroups;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;

/** A pool of shared servers in a work directory of its own, and checks that a removed tenant left nothing behind. */
final class SharedRungFixture implements AutoCloseable {
    final Path workDir = TestingDirectories.newWorkDir("shared-rung");
    final SharedServerPool pool;

    SharedRungFixture() {
        this(SharedServerConfig.DEFAULT_MAX_CONNECTIONS);
    }

    /** Shared servers with {@code max_connections} of {@code maxConnections}. */
    SharedRungFixture(int maxConnections) {
        pool = new SharedServerPool(new SharedServerConfig(
                workDir.resolve("shared"),
                TestingDirectories.cacheDir(),
                TestingDirectories.serviceUser(),
                Cgroups.detect("palisade-test"),
                Duration.ofSeconds(60)).withPlacement(SharedServerConfig.DEFAULT_TENANTS_PER_SERVER, maxConnections));
    }

    /** No role, database or schema on any server beyond those of the tenants the pool still records. */
    void assertNothingLeft(String id) {
        assertThat(pool.tenant(id)).as("registry entry of %s", id).isEmpty();
        for (TenantLayout layout : TenantLayout.values()) {
            pool.tenants(layout).forEach(t -> assertThat(t.id()).isNotEqualTo(id));
        }
        int tenants = pool.tenants(TenantLayout.DATABASE).size() + pool.tenants(TenantLayout.SCHEMA).size();
        int databaseTenants = pool.tenants(TenantLayout.DATABASE).size();
        int schemaTenants = pool.tenants(TenantLayout.SCHEMA).size();
        for (SharedServer server : pool.serversForTests()) {
            if (!server.isAlive()) {
                continue;
            }
            assertThat(count(server, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'tenant\\_%'"))
                    .as("tenant roles on %s", server.name()).isLessThanOrEqualTo(tenants);
            assertThat(count(server, "postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'tenant\\_%'"))
                    .as("tenant databases on %s", server.name()).isLessThanOrEqualTo(databaseTenants);
            assertThat(count(server, TenantLayout.SHARED_DATABASE,
                            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'"))
                    .as("tenant schemas on %s", server.name()).isLessThanOrEqualTo(schemaTenants);
            assertThat(count(server, "postgres",
                            "SELECT count(*) FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass "
                                    + "AND refobjid NOT IN (SELECT oid FROM pg_roles)"))
                    .as("dependencies on dropped roles").isZero();
        }
    }

    static long count(SharedServer server, String database, String sql) {
        try (Connection c = server.connect(database); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        } catch (SQLException e) {
            throw new AssertionError(e);
        }
    }

    @Override
    public void close() {
        pool.removeEmptyServers();
        pool.close();
        TestingDirectories.deleteRecursively(workDir);
        assertThat(Files.exists(workDir)).isFalse();
    }
}
