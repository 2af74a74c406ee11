package io.palisade.agent.shared;

import static java.util.Objects.requireNonNull;

import io.palisade.agent.AdminConnection;
import io.palisade.pgwire.Sql;
import io.palisade.pgwire.TenantBootstrap;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code database} and {@code schema} rungs: a tenant is a role of its own on a shared server (from
 * {@link SharedServerPool}), with a database of its own or a schema of its own in the server's shared database. The role
 * is never a superuser, can only connect to its own database, and has a connection limit and timeouts from its plan.
 * "Stopped" means the role cannot log in (its sessions are ended); the server keeps running for the other tenants.
 * Suspend does not apply: an idle tenant holds no process and no memory of its own. Thread-safe for different ids;
 * operations on one server's tenants queue for a few permits ({@link SharedServer#operation()}).
 */
public final class SharedRungDriver implements IsolationDriver {
    private static final Logger log = LoggerFactory.getLogger(SharedRungDriver.class);
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final char[] NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789".toCharArray();

    /**
     * Run first in a management session in a database a tenant owns: the owner's {@code ALTER DATABASE ... SET} apply
     * to every session there, the superuser's included (a {@code role} setting would make it run as the tenant).
     */

    private final SharedServerPool pool;
    private final TenantLayout layout;

    public SharedRungDriver(SharedServerPool pool, TenantLayout layout) {
        this.pool = requireNonNull(pool, "pool is null");
        this.layout = requireNonNull(layout, "layout is null");
    }

    @Override
    public io.palisade.spi.Rung rung() {
        return layout.rung();
    }

    @Override
    public DriverProbe probe() {
        String what = layout == TenantLayout.DATABASE
                ? "a database and a role of its own on a shared PostgreSQL server"
                : "a schema and a role of its own in a shared database";
        return new DriverProbe(name(), true, false, "shared-server",
                "each tenant gets " + what + " (up to " + pool.config().tenantsPerServer() + " tenants a server, each "
                        + "server capped at " + pool.config().serverCpu() + " CPU / " + pool.config().serverMemoryMb()
                        + " MB); no suspend: an idle tenant costs no process");
    }

    @Override
    public RunningInstance provision(InstanceSpec spec, TenantCredentials credentials, ProgressListener progress) {
        if (pool.tenant(spec.id(), layout).isPresent()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "instance " + spec.id() + " already exists on this host");
        }
        progress.phase("placing on a shared PostgreSQL " + spec.version().release() + " server");
        SharedServer server = pool.place(spec.version());
        String role = "tenant_" + randomName(16);
        Tenant tenant = new Tenant(spec.id(), layout, server.name(), role,
                layout == TenantLayout.DATABASE ? role : TenantLayout.SHARED_DATABASE,
                TenantLimits.of(spec.plan(), pool.config()));
        pool.record(tenant);
        try {
            progress.phase(layout == TenantLayout.DATABASE ? "creating role and database" : "creating role and schema");
            create(server, tenant, credentials.password());
            log.info("placed {} on shared server {} ({} rung)", spec.id(), server.name(), layout.rung());
            return running(tenant, server);
        } catch (RuntimeException e) {
            destroy(spec.id());
            throw e instanceof PalisadeException pe ? pe
                    : new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot create " + spec.id() + ": " + e.getMessage(),
                            e);
        }
    }

    /**
     * Creates the tenant's role (with its limits) and its database or schema. The schema rung does it all in one
     * transaction on a pooled connection to the shared database; the database rung renames a spare database (a ready copy
     * of template1) when one is there, and falls back to {@code CREATE DATABASE}.
     */
    private void create(SharedServer server, Tenant tenant, String password) {
        String role = Sql.quoteIdent(tenant.role());
        TenantLimits limits = tenant.limits();
        String createRole = TenantBootstrap.createSharedRole(tenant.role(), limits.connections(), password);
        try (SharedServer.Operation operation = server.operation()) {
            if (layout == TenantLayout.SCHEMA) {
                // the GRANT updates the shared database's ACL, one row for all tenants: see SharedServer.sharedRowsLock
                synchronized (server.sharedRowsLock()) {
                    server.inTransaction(TenantLayout.SHARED_DATABASE, c -> {
                        try (Statement s = c.createStatement()) {
                            createRole(s, createRole, role, limits);
                            s.execute("GRANT CONNECT, TEMPORARY ON DATABASE " + TenantLayout.SHARED_DATABASE + " TO "
                                    + role);
                            s.execute("ALTER ROLE " + role + " IN DATABASE " + TenantLayout.SHARED_DATABASE
                                    + " SET search_path = " + role + ", " + SharedServerSql.EXTENSIONS_SCHEMA);
                            s.execute("CREATE SCHEMA " + role + " AUTHORIZATION " + role);
                        }
                        return null;
                    });
                }
                return;
            }
            server.inTransaction("postgres", c -> {
                try (Statement s = c.createStatement()) {
                    createRole(s, createRole, role, limits);
                }
                return null;
            });
            java.util.Optional<String> spare = server.takeSpare();
            if (spare.isPresent()) {
                server.inTransaction("postgres", c -> {
                    try (Statement s = c.createStatement()) {
                        s.execute("ALTER DATABASE " + spare.get() + " RENAME TO " + role);
                        s.execute("ALTER DATABASE " + role + " OWNER TO " + role);
                        s.execute("REVOKE ALL ON DATABASE " + role + " FROM PUBLIC");
                    }
                    return null;
                });
            } else {
                try (Connection c = server.connect("postgres"); Statement s = c.createStatement()) {
                    s.execute("CREATE DATABASE " + role + " OWNER " + role);
                    s.execute("REVOKE ALL ON DATABASE " + role + " FROM PUBLIC");
                }
            }
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot create " + tenant.id() + " on shared server "
                    + server.name() + ": " + e.getMessage(), e);
        }
    }

    private static void createRole(Statement s, String createRole, String role, TenantLimits limits)
            throws SQLException {
        s.execute(createRole);
        s.execute("ALTER ROLE " + role + " SET statement_timeout = " + limits.statementTimeout().toMillis());
        s.execute("ALTER ROLE " + role + " SET idle_in_transaction_session_timeout = "
                + limits.idleInTransactionTimeout().toMillis());
        s.execute("ALTER ROLE " + role + " SET temp_file_limit = " + limits.tempFileLimitKb());
    }

    private static String randomName(int length) {
        char[] name = new char[length];
        for (int i = 0; i < length; i++) {
            name[i] = NAME_CHARS[RANDOM.nextInt(NAME_CHARS.length)];
        }
        return new String(name);
    }

    private RunningInstance running(Tenant tenant, SharedServer server) {
        return new RunningInstance(tenant.id(), server.endpoint(), java.util.Optional.of(tenant.login()),
                server.startedAt(), Map.of("driver", name(), "shared_server", server.name()));
    }

    private Tenant tenant(String id) {
        return pool.tenant(id, layout).orElseThrow(() -> new PalisadeException(
                ErrorCode.NOT_FOUND, "instance " + id + " has nothing on this host"));
    }

    /**
     * Starts the tenant's server if it is down, and lets the tenant's role log in again. A server that goes down
     * meanwhile (a postmaster killed a moment ago still looks alive until it is reaped) is waited for, up to the start
     * timeout, rather than failing the tenant: a crash of the shared server must not outlast its restart.
     */
    @Override
    public RunningInstance start(InstanceSpec spec, ProgressListener progress) {
        Tenant tenant = tenant(spec.id());
        SharedServer server = pool.server(tenant);
        long deadline = System.nanoTime() + pool.config().startTimeout().toNanos();
        int failuresWhileAlive = 0;
        while (true) {
            pool.ensureRunning(server);
            if (!pool.isStopped(tenant)) {
                return running(tenant, server);
            }
            try (SharedServer.Operation operation = server.operation(); Connection c = server.connect("postgres");
                    Statement s = c.createStatement()) {
                s.execute("ALTER ROLE " + Sql.quoteIdent(tenant.role()) + " LOGIN");
                pool.markStopped(tenant, false);
                return running(tenant, server);
            } catch (SQLException | PalisadeException e) {
                boolean alive = server.isAlive();
                failuresWhileAlive += alive ? 1 : 0;
                if (failuresWhileAlive > 1 || System.nanoTime() > deadline) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot start " + spec.id()
                            + " on shared server " + server.name() + " (" + (alive ? "running" : "down") + "): "
                            + e.getMessage(), e);
                }
                log.info("start of {} on shared server {} failed ({}); retrying once the server is back", spec.id(),
                        server.name(), e.getMessage());
                io.palisade.host.Processes.sleep(Duration.ofMillis(alive ? 1000 : 100));
            }
        }
    }

    /** Takes the role's login away and ends its sessions; the data stays. */
    @Override
    public void stop(String id) {
        pool.tenant(id, layout).ifPresent(tenant -> {
            SharedServer server = pool.server(tenant);
            if (!server.isAlive() || pool.isStopped(tenant)) {
                return;
            }
            pool.markStopped(tenant, true);
            try (SharedServer.Operation operation = server.operation(); Connection c = server.connect("postgres");
                    Statement s = c.createStatement()) {
                s.execute("ALTER ROLE " + Sql.quoteIdent(tenant.role()) + " NOLOGIN");
                terminateSessions(c, tenant);
            } catch (SQLException e) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot stop " + id + ": " + e.getMessage(), e);
            }
        });
    }

    private static void terminateSessions(Connection c, Tenant tenant) throws SQLException {
        try (PreparedStatement p = c.prepareStatement(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = ?")) {
            p.setString(1, tenant.role());
            p.executeQuery().close();
        }
    }

    /** Drops the tenant's database or schema, everything it owns or was granted, and its role. */
    @Override
    public void destroy(String id) {
        java.util.Optional<Tenant> found = pool.tenant(id, layout);
        if (found.isEmpty()) {
            return;
        }
        Tenant tenant = found.get();
        SharedServer server = pool.server(tenant);
        pool.ensureRunning(server);
        String role = Sql.quoteIdent(tenant.role());
        try (SharedServer.Operation operation = server.operation(); Connection c = server.connect("postgres");
                Statement s = c.createStatement()) {
            if (roleExists(c, tenant.role())) {
                s.execute("ALTER ROLE " + role + " NOLOGIN");
                terminateSessions(c, tenant);
            }
            if (layout == TenantLayout.DATABASE) {
                if (databaseExists(c, tenant.database())) {
                    // the owner may have made it a template, which DROP DATABASE refuses
                    s.execute("ALTER DATABASE " + role + " IS_TEMPLATE false");
                }
                s.execute("DROP DATABASE IF EXISTS " + role + " WITH (FORCE)");
            } else if (roleExists(c, tenant.role())) {
                // DROP OWNED revokes the role's privileges on the shared database too: one row for all tenants
                synchronized (server.sharedRowsLock()) {
                    try (Connection shared = server.connect(TenantLayout.SHARED_DATABASE);
                            Statement ss = shared.createStatement()) {
                        ss.execute("DROP OWNED BY " + role + " CASCADE");
                    }
                }
            }
            if (roleExists(c, tenant.role())) {
                // what other tenants' databases hold for the role (a grant, a policy naming it), however it got there
                for (String other : databasesDependingOn(c, tenant.role())) {
                    // its owner may have closed it to connections
                    s.execute("ALTER DATABASE " + Sql.quoteIdent(other) + " ALLOW_CONNECTIONS true");
                    try (Connection o = server.connect(other); Statement os = o.createStatement()) {
                        // that database's owner chose its settings: take back any that would change who runs this
                        AdminConnection.reclaimSession(o);
                        os.execute("SET statement_timeout = '60s'");
                        os.execute("SET lock_timeout = '30s'");
                        os.execute("DROP OWNED BY " + role + " CASCADE");
                    }
                }
                // privileges the role holds on shared objects (databases), then the role itself
                synchronized (server.sharedRowsLock()) {
                    s.execute("DROP OWNED BY " + role + " CASCADE");
                    s.execute("DROP ROLE " + role);
                }
            }
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot delete " + id + " from shared server "
                    + server.name() + ": " + e.getMessage(), e);
        }
        pool.forget(tenant);
        log.info("removed {} from shared server {}", id, server.name());
    }

    private static boolean databaseExists(Connection c, String database) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("SELECT 1 FROM pg_catalog.pg_database WHERE datname = ?")) {
            p.setString(1, database);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next();
            }
        }
    }

    /** Databases other than {@code postgres} holding objects, grants or policies that depend on {@code role}. */
    private static List<String> databasesDependingOn(Connection c, String role) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("""
                SELECT DISTINCT d.datname FROM pg_catalog.pg_shdepend s
                JOIN pg_catalog.pg_database d ON d.oid = s.dbid
                JOIN pg_catalog.pg_roles r ON r.oid = s.refobjid
                WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND r.rolname = ?
                  AND d.datname NOT IN ('postgres', 'template0')
                ORDER BY 1""")) {
            p.setString(1, role);
            List<String> databases = new java.util.ArrayList<>();
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) {
                    databases.add(rs.getString(1));
                }
            }
            return databases;
        }
    }

    private static boolean roleExists(Connection c, String role) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("SELECT 1 FROM pg_roles WHERE rolname = ?")) {
            p.setString(1, role);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next();
            }
        }
    }

    @Override
    public void setPassword(String id, String username, String password) {
        Tenant tenant = tenant(id);
        SharedServer server = pool.server(tenant);
        try (SharedServer.Operation operation = server.operation(); Connection c = server.connect("postgres");
                Statement s = c.createStatement()) {
            s.execute(TenantBootstrap.setPassword(tenant.role(), password));
        } catch (SQLException | PalisadeException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot set the password of " + id + ": "
                    + e.getMessage(), e);
        }
    }

    /** The server runs and the tenant is not stopped (no query: reconciliation asks this of every tenant often). */
    @Override
    public boolean isRunning(String id) {
        java.util.Optional<Tenant> tenant = pool.tenant(id, layout);
        return tenant.isPresent() && !pool.isStopped(tenant.get()) && pool.server(tenant.get()).isAlive();
    }

    @Override
    public Set<String> listInstances() {
        Set<String> ids = new TreeSet<>();
        pool.tenants(layout).forEach(t -> ids.add(t.id()));
        return ids;
    }

    /** Size of the tenant's database or schema; CPU and memory are the shared server's and not told per tenant. */
    @Override
    public InstanceStats stats(String id) {
        Tenant tenant = tenant(id);
        SharedServer server = pool.server(tenant);
        if (!server.isAlive()) {
            return new InstanceStats(false, -1, 0, -1, -1, -1);
        }
        String sizeSql = layout == TenantLayout.DATABASE
                ? "SELECT pg_database_size(" + Sql.quoteLiteral(tenant.database()) + ")"
                : "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
                        + "ON n.oid = c.relnamespace WHERE n.nspname = " + Sql.quoteLiteral(tenant.schema())
                        + " AND c.relkind IN ('r', 'm', 'S', 't')";
        String connectionsSql = "SELECT count(*) FROM pg_stat_activity WHERE usename = "
                + Sql.quoteLiteral(tenant.role());
        try (SharedServer.Operation operation = server.operation();
                Connection c = server.connect(
                        layout == TenantLayout.DATABASE ? "postgres" : TenantLayout.SHARED_DATABASE);
                Statement s = c.createStatement()) {
            long size;
            try (ResultSet rs = s.executeQuery(sizeSql)) {
                rs.next();
                size = rs.getLong(1);
            }
            int connections;
            try (ResultSet rs = s.executeQuery(connectionsSql)) {
                rs.next();
                connections = rs.getInt(1);
            }
            return new InstanceStats(isRunning(id), -1,
                    Duration.between(server.startedAt(), Instant.now()).toSeconds(), -1, -1, size, connections);
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot measure " + id + ": " + e.getMessage(), e);
        }
    }

    /** The tenant's own lines of the server log (matched on the session's user name in each JSON entry). */
    @Override
    public List<String> logTail(String id, int lines) {
        Tenant tenant = tenant(id);
        SharedServer server = pool.server(tenant);
        return TenantLog.tail(List.of(server.previousJsonLog(), server.jsonLog()), tenant.role(), lines);
    }

    /** The pool is shared by both shared rungs and closed by its owner. */
    /**
     * The tenant on its shared server: its own database (namespace {@code public}, extensions there too) on the
     * database rung, its schema in the shared database (extensions in the shared {@code extensions} schema) on the schema
     * rung; the server's superuser over the private socket.
     */
    @Override
    public io.palisade.spi.TenantPlace tenantPlace(String id) {
        Tenant tenant = tenant(id);
        SharedServer server = pool.server(tenant);
        boolean schema = layout == TenantLayout.SCHEMA;
        return new io.palisade.spi.TenantPlace(server.adminAccess(), tenant.database(),
                schema ? tenant.schema() : "public", tenant.role(),
                schema ? SharedServerSql.EXTENSIONS_SCHEMA : "public", server.endpoint());
    }

    @Override
    public void close() {}
}
