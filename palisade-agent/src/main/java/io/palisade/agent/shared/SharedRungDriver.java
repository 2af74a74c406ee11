package io.palisade.agent.shared;

import static java.util.Objects.requireNonNull;

import io.palisade.agent.AdminConnection;
import io.palisade.pgwire.ScramVerifier;
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

    private final SharedServerPool pool;
    private final TenantLayout layout;

    public SharedRungDriver(SharedServerPool pool, TenantLayout layout) {
        this.pool = requireNonNull(pool, "pool is null");
        this.layout = requireNonNull(layout, "layout is null");
    }

    @Override
    public String name() {
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
        if (pool.tenant(spec.id()).isPresent()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "instance " + spec.id() + " already exists on this host");
        }
        progress.phase("placing on a shared PostgreSQL " + spec.version().release() + " server");
        SharedServer server = pool.place(spec.version());
        String role = "tenant_" + randomName(16);
        Tenant tenant = new Tenant(spec.id(), layout, server.name(), role,
                layout == TenantLayout.DATABASE ? role : TenantLayout.SHARED_DATABASE,
                TenantLimits.of(spec.plan(), pool.config().maxConnections()));
        pool.record(tenant);
        try {
            progress.phase(layout == TenantLayout.DATABASE ? "creating role and database" : "creating role and schema");
            create(server, tenant, credentials.password());
            log.info("placed {} on shared server {} ({} rung)", spec.id(), server.name(), layout.rung());
            return running(tenant, server);
        } catch (RuntimeException e) {
            destroy(spec.id());
            throw e instanceof PalisadeException pe ? pe
                    : new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot create " + spec.id() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Creates the tenant's role (with its connection limit and timeouts) and its database or schema. The role and, on
     * the schema rung, its schema are made in one transaction: one commit, and nothing half-made if it fails. On the
     * schema rung everything runs in the shared database (roles and grants are cluster-wide), so one management
     * connection does. {@code CREATE DATABASE} cannot run in a transaction block and copies {@code template1} with
     * PostgreSQL's default {@code WAL_LOG} strategy: measured here several times faster than {@code FILE_COPY}, whose
     * two checkpoints and per-file fsyncs grow with the server's other tenants.
     */
    private void create(SharedServer server, Tenant tenant, String password) {
        String role = AdminConnection.ident(tenant.role());
        TenantLimits limits = tenant.limits();
        List<String> roleSql = new ArrayList<>(List.of(
                "CREATE ROLE " + role + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                        + "NOINHERIT CONNECTION LIMIT " + limits.connections() + " PASSWORD "
                        + AdminConnection.literal(ScramVerifier.of(password)),
                "ALTER ROLE " + role + " SET statement_timeout = " + limits.statementTimeout().toMillis(),
                "ALTER ROLE " + role + " SET idle_in_transaction_session_timeout = "
                        + limits.idleInTransactionTimeout().toMillis(),
                "ALTER ROLE " + role + " SET temp_file_limit = " + limits.tempFileLimitKb()));
        if (layout == TenantLayout.SCHEMA) {
            roleSql.add("GRANT CONNECT, TEMPORARY ON DATABASE " + TenantLayout.SHARED_DATABASE + " TO " + role);
            roleSql.add("ALTER ROLE " + role + " IN DATABASE " + TenantLayout.SHARED_DATABASE + " SET search_path = "
                    + role + ", " + SharedServerSql.EXTENSIONS_SCHEMA);
            roleSql.add("CREATE SCHEMA " + role + " AUTHORIZATION " + role);
        }
        String database = layout == TenantLayout.SCHEMA ? TenantLayout.SHARED_DATABASE : "postgres";
        try (SharedServer.Operation operation = server.operation(); Connection c = server.connect(database);
                Statement s = c.createStatement()) {
            if (layout == TenantLayout.SCHEMA) {
                // the GRANT updates the shared database's ACL, one row for all tenants: see SharedServer.sharedRowsLock
                synchronized (server.sharedRowsLock()) {
                    inTransaction(c, s, roleSql);
                }
            } else {
                inTransaction(c, s, roleSql);
                s.execute("CREATE DATABASE " + role + " OWNER " + role);
                s.execute("REVOKE ALL ON DATABASE " + role + " FROM PUBLIC");
            }
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot create " + tenant.id() + " on shared server "
                    + server.name() + ": " + e.getMessage(), e);
        } finally {
            server.loginRolesChanged();
        }
    }

    private static void inTransaction(Connection c, Statement s, List<String> sql) throws SQLException {
        c.setAutoCommit(false);
        try {
            for (String statement : sql) {
                s.execute(statement);
            }
            c.commit();
        } catch (SQLException e) {
            c.rollback();
            throw e;
        } finally {
            c.setAutoCommit(true);
        }
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
        return pool.tenant(id).filter(t -> t.layout() == layout).orElseThrow(() -> new PalisadeException(
                ErrorCode.NOT_FOUND, "instance " + id + " has nothing on this host"));
    }

    /**
     * Starts the tenant's server if it is down, and lets the tenant's role log in again. After a crash of the server
     * the role can still log in, so restarting its many tenants costs no connection each.
     */
    @Override
    public RunningInstance start(InstanceSpec spec, ProgressListener progress) {
        Tenant tenant = tenant(spec.id());
        SharedServer server = pool.server(tenant);
        server.ensureRunning();
        if (!server.loginRoles().contains(tenant.role())) {
            try (SharedServer.Operation operation = server.operation(); Connection c = server.connect("postgres");
                    Statement s = c.createStatement()) {
                s.execute("ALTER ROLE " + AdminConnection.ident(tenant.role()) + " LOGIN");
            } catch (SQLException e) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                        "cannot start " + spec.id() + ": " + e.getMessage(), e);
            } finally {
                server.loginRolesChanged();
            }
        }
        return running(tenant, server);
    }

    /** Takes the role's login away and ends its sessions; the data stays. */
    @Override
    public void stop(String id) {
        pool.tenant(id).filter(t -> t.layout() == layout).ifPresent(tenant -> {
            SharedServer server = pool.server(tenant);
            if (!server.isAlive()) {
                return;
            }
            try (SharedServer.Operation operation = server.operation(); Connection c = server.connect("postgres");
                    Statement s = c.createStatement()) {
                s.execute("ALTER ROLE " + AdminConnection.ident(tenant.role()) + " NOLOGIN");
                terminateSessions(c, tenant);
            } catch (SQLException e) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot stop " + id + ": " + e.getMessage(), e);
            } finally {
                server.loginRolesChanged();
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
        java.util.Optional<Tenant> found = pool.tenant(id).filter(t -> t.layout() == layout);
        if (found.isEmpty()) {
            return;
        }
        Tenant tenant = found.get();
        SharedServer server = pool.server(tenant);
        server.ensureRunning();
        String role = AdminConnection.ident(tenant.role());
        try (SharedServer.Operation operation = server.operation(); Connection c = server.connect("postgres");
                Statement s = c.createStatement()) {
            if (roleExists(c, tenant.role())) {
                s.execute("ALTER ROLE " + role + " NOLOGIN");
                terminateSessions(c, tenant);
            }
            if (layout == TenantLayout.DATABASE) {
                s.execute("DROP DATABASE IF EXISTS " + role + " WITH (FORCE)");
            }
            // DROP OWNED revokes the role's privileges on the shared database too: one row for all tenants
            synchronized (server.sharedRowsLock()) {
                if (layout == TenantLayout.SCHEMA && roleExists(c, tenant.role())) {
                    try (Connection shared = server.connect(TenantLayout.SHARED_DATABASE);
                            Statement ss = shared.createStatement()) {
                        ss.execute("DROP OWNED BY " + role + " CASCADE");
                    }
                }
                if (roleExists(c, tenant.role())) {
                    // privileges the role holds on shared objects (databases), then the role itself
                    s.execute("DROP OWNED BY " + role + " CASCADE");
                    s.execute("DROP ROLE " + role);
                }
            }
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot delete " + id + " from shared server "
                    + server.name() + ": " + e.getMessage(), e);
        } finally {
            server.loginRolesChanged();
        }
        pool.forget(tenant);
        log.info("removed {} from shared server {}", id, server.name());
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
            s.execute("ALTER ROLE " + AdminConnection.ident(tenant.role()) + " PASSWORD "
                    + AdminConnection.literal(ScramVerifier.of(password)));
        } catch (SQLException | PalisadeException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot set the password of " + id + ": "
                    + e.getMessage(), e);
        }
    }

    /**
     * The server runs and the role may log in (from the server's list of roles that may, read once for all its tenants:
     * see {@link SharedServer#loginRoles()}).
     */
    @Override
    public boolean isRunning(String id) {
        java.util.Optional<Tenant> tenant = pool.tenant(id).filter(t -> t.layout() == layout);
        if (tenant.isEmpty() || !pool.server(tenant.get()).isAlive()) {
            return false;
        }
        try {
            return pool.server(tenant.get()).loginRoles().contains(tenant.get().role());
        } catch (PalisadeException e) {
            return false;
        }
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
                ? "SELECT pg_database_size(" + AdminConnection.literal(tenant.database()) + ")"
                : "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
                        + "ON n.oid = c.relnamespace WHERE n.nspname = " + AdminConnection.literal(tenant.schema())
                        + " AND c.relkind IN ('r', 'm', 'S', 't')";
        String database = layout == TenantLayout.DATABASE ? "postgres" : TenantLayout.SHARED_DATABASE;
        try (SharedServer.Operation operation = server.operation(); Connection c = server.connect(database);
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(sizeSql)) {
            rs.next();
            return new InstanceStats(isRunning(id), -1,
                    Duration.between(server.startedAt(), Instant.now()).toSeconds(), -1, -1, rs.getLong(1));
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot measure " + id + ": " + e.getMessage(), e);
        }
    }

    /** The tenant's own lines of the server log (matched on the session's user name in each JSON entry). */
    @Override
    public List<String> logTail(String id, int lines) {
        Tenant tenant = tenant(id);
        return TenantLog.tail(pool.server(tenant).jsonLog(), tenant.role(), lines);
    }

    /** The pool is shared by both shared rungs and closed by its owner. */
    @Override
    public void close() {}
}
