package io.palisade.agent.shared;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.PostgresBinaries;
import io.palisade.host.PostgresServer;
import io.palisade.host.Processes;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.PostgresVersion;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One shared PostgreSQL server that holds many tenants: its directory ({@code data/}, {@code port}, the server log, the
 * tenant registry {@code tenants/}), its capped postmaster, and management connections to it. Created with
 * {@code initdb} and the hardening of {@link SharedServerSql} on first use. Thread-safe: start and stop are serialised
 * on the instance.
 */
final class SharedServer {
    private static final Logger log = LoggerFactory.getLogger(SharedServer.class);

    private final String name;
    private final PostgresVersion version;
    private final Path dir;
    /** How long a measured disk use is reused: walking the data directory of hundreds of databases takes a while. */
    private static final Duration DISK_REUSE = Duration.ofSeconds(10);

    /**
     * How long the set of tenant roles that may log in is reused: the reconciler asks for every tenant every few
     * seconds, and a management connection per tenant and check let hundreds of tenants exhaust the server's
     * connections (and cost a process fork each).
     */
    private static final Duration LOGIN_REUSE = Duration.ofSeconds(2);
    /** Management operations on tenants (create, start, stop, delete, password, stats) that run at once on a server. */
    static final int MANAGEMENT_OPERATIONS = 4;

    private final SharedServerConfig config;
    private final Object sharedRows = new Object();
    private final Object loginRead = new Object();
    private final Semaphore operations = new Semaphore(MANAGEMENT_OPERATIONS, true);
    private final ManagementConnections connections = new ManagementConnections();
    private final AtomicLong loginChanges = new AtomicLong();
    private volatile PostgresServer server;
    private volatile boolean stopping;
    private volatile DiskUse disk;
    private volatile LoginRoles loginRoles;

    /** The data directory's size when last walked. */
    private record DiskUse(long bytes, long atNanos) {}

    /** Tenant roles that may log in, as read at {@code atNanos} after {@code changes} changes. */
    private record LoginRoles(Set<String> names, long atNanos, long changes) {}

    /** A permit to run one management operation (see {@link #operation()}); closing it lets the next one run. */
    interface Operation extends AutoCloseable {
        @Override
        void close();
    }

    SharedServer(String name, PostgresVersion version, SharedServerConfig config) {
        this.name = requireNonNull(name, "name is null");
        this.version = requireNonNull(version, "version is null");
        this.config = requireNonNull(config, "config is null");
        this.dir = config.serversDir().resolve(name);
    }

    String name() {
        return name;
    }

    PostgresVersion version() {
        return version;
    }

    Path dir() {
        return dir;
    }

    /** The server's log in PostgreSQL's JSON format: one entry a line, with the session's user name in a field. */
    Path jsonLog() {
        return data().resolve("log").resolve("postgres.json");
    }

    private Path data() {
        return dir.resolve("data");
    }

    boolean isAlive() {
        PostgresServer current = server;
        return current != null && current.isAlive();
    }

    /** Whether the server was stopped on purpose (not crashed). */
    boolean stopping() {
        return stopping;
    }

    Endpoint endpoint() {
        return running().endpoint();
    }

    Instant startedAt() {
        return running().startedAt();
    }

    private PostgresServer running() {
        PostgresServer current = server;
        if (current == null || !current.isAlive()) {
            throw new PalisadeException(ErrorCode.NOT_READY, "shared server " + name + " is not running");
        }
        return current;
    }

    /** Creates the server (first use) and starts it; returns at once if it runs. */
    synchronized void ensureRunning() {
        if (isAlive()) {
            return;
        }
        stopping = false;
        if (!Files.exists(dir.resolve(".bootstrapped"))) {
            create();
        }
        connections.close(); // those of a crashed postmaster
        server = start();
    }

    private void create() {
        log.info("creating shared server {} (PostgreSQL {})", name, version.release());
        Processes.run(List.of("rm", "-rf", data().toString()), Duration.ofMinutes(1), null);
        PostgresBinaries binaries = PostgresBinaries.install(config.cacheDir(), version);
        PostgresServer.initdb(binaries, data(), config.user());
        writeHba();
        try (PostgresServer bootstrap = start()) {
            try (Connection c = connect("postgres"); Statement s = c.createStatement()) {
                for (String sql : SharedServerSql.SERVER) {
                    s.execute(sql);
                }
            }
            for (String database : List.of("template1", TenantLayout.SHARED_DATABASE)) {
                try (Connection c = connect(database); Statement s = c.createStatement()) {
                    for (String sql : SharedServerSql.GUARD) {
                        s.execute(sql);
                    }
                    if (database.equals(TenantLayout.SHARED_DATABASE)) {
                        for (String sql : SharedServerSql.sharedDatabase()) {
                            s.execute(sql);
                        }
                    }
                }
            }
            // template1 is copied for every database-rung tenant: a checkpoint now keeps each copy cheap
            try (Connection c = connect("postgres"); Statement s = c.createStatement()) {
                s.execute("CHECKPOINT");
            }
            server = null;
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot prepare shared server " + name + ": "
                    + e.getMessage(), e);
        }
        try {
            Files.createDirectories(tenantsDir());
            Files.createFile(dir.resolve(".bootstrapped"));
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot mark shared server " + name + " ready", e);
        }
    }

    private PostgresServer start() {
        Optional<Cgroups.Group> group = config.cgroups().create(cgroupName(), config.serverCpu(),
                (long) config.serverMemoryMb() * 1024 * 1024);
        PostgresBinaries binaries = PostgresBinaries.install(config.cacheDir(), version);
        PalisadeException last = null;
        for (int attempt = 0; attempt < 3; attempt++) {
            int port = attempt == 0 ? previousPort().orElseGet(PostgresServer::freePort) : PostgresServer.freePort();
            try {
                PostgresServer started = PostgresServer.start(new PostgresServer.Options(
                        binaries, data(), "127.0.0.1", port, PostgresServer.socketDirFor(socketName()),
                        dir.resolve("postgres.log"), config.user(), group, settings(), config.startTimeout()));
                server = started;
                Files.writeString(dir.resolve("port"), Integer.toString(port));
                log.info("started shared server {} (pid {}, {})", name, started.pid(), started.endpoint());
                return started;
            } catch (IOException e) {
                throw new PalisadeException(ErrorCode.INTERNAL, "cannot record the port of shared server " + name, e);
            } catch (PalisadeException e) {
                last = e;
                log.warn("start of shared server {} failed (attempt {}): {}", name, attempt + 1, e.getMessage());
            }
        }
        throw last;
    }

    private Map<String, String> settings() {
        Map<String, String> settings = new LinkedHashMap<>();
        int memoryMb = config.serverMemoryMb();
        settings.put("shared_buffers", Math.max(32, memoryMb / 4) + "MB");
        settings.put("effective_cache_size", Math.max(64, memoryMb / 2) + "MB");
        settings.put("work_mem", "4MB");
        settings.put("maintenance_work_mem", Math.max(16, memoryMb / 32) + "MB");
        settings.put("max_connections", Integer.toString(config.maxConnections()));
        settings.put("superuser_reserved_connections", "5");
        settings.put("password_encryption", "scram-sha-256");
        settings.put("dynamic_shared_memory_type", "posix");
        settings.put("max_worker_processes", Integer.toString(Math.max(4, config.serverCpu() * 2)));
        settings.put("max_parallel_workers", Integer.toString(config.serverCpu()));
        settings.put("max_parallel_workers_per_gather", "1");
        // tenants' log lines: one JSON entry a line, so a tenant's own lines are found by its user name and no
        // tenant can forge a line of another's
        settings.put("logging_collector", "on");
        settings.put("log_destination", "jsonlog");
        settings.put("log_directory", "log");
        settings.put("log_filename", "postgres.log");
        settings.put("log_rotation_age", "0");
        settings.put("log_rotation_size", "64MB");
        settings.put("log_file_mode", "0600");
        // what a tenant sees of others: not their query text (default), not the server's files or settings
        settings.put("track_activity_query_size", "2048");
        return settings;
    }

    /** The superuser only over the private socket; tenants only with SCRAM over TCP; replication for nobody. */
    private void writeHba() {
        String hba = """
                # palisade shared server: the superuser only over the private Unix socket; tenants with SCRAM over TCP
                local   all           palisade_admin                 trust
                host    all           palisade_admin  0.0.0.0/0      reject
                host    all           palisade_admin  ::/0           reject
                host    replication   all             0.0.0.0/0      reject
                host    all           all             127.0.0.1/32   scram-sha-256
                host    all           all             ::1/128        scram-sha-256
                """;
        try {
            Path file = data().resolve("pg_hba.conf");
            Files.deleteIfExists(file);
            Files.writeString(file, hba);
            config.user().chown(file);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot write pg_hba.conf of shared server " + name, e);
        }
    }

    private Optional<Integer> previousPort() {
        try {
            int port = Integer.parseInt(Files.readString(dir.resolve("port")).strip());
            try (var probe = new java.net.ServerSocket(port, 1, java.net.InetAddress.getLoopbackAddress())) {
                return Optional.of(port);
            }
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    String cgroupName() {
        return "shared-" + String.format("%08x", config.serversDir().toAbsolutePath().normalize().toString().hashCode())
                + "-" + name;
    }

    private String socketName() {
        return "shared-" + String.format("%08x", config.serversDir().toAbsolutePath().normalize().toString().hashCode())
                + "-" + name;
    }

    /** A management connection as the superuser over the private socket (kept for reuse once closed). */
    Connection connect(String database) {
        return connections.get(running().socketFile(), database);
    }

    /** Stops the server (fast shutdown, bounded). Its tenants stay recorded. Idempotent. */
    synchronized void stop() {
        stopping = true;
        connections.close();
        PostgresServer current = server;
        server = null;
        if (current != null) {
            current.close();
        }
        PostgresServer.stopLeftover(data());
    }

    /** Kills the postmaster at once, as a crash would (tests and the blast-radius benchmark). */
    long pid() {
        return running().pid();
    }

    /** Stops the server and removes everything it has on the host. */
    synchronized void destroy() {
        stop();
        Processes.run(List.of("rm", "-rf", dir.toString()), Duration.ofMinutes(5), null);
        Processes.run(List.of("rm", "-rf", PostgresServer.socketDirFor(socketName()).toString()), Duration.ofSeconds(30),
                null);
        config.cgroups().find(cgroupName()).ifPresent(Cgroups.Group::remove);
    }

    Optional<Cgroups.Group> cgroup() {
        return config.cgroups().find(cgroupName());
    }

    // ---- the tenant registry ----

    private Path tenantsDir() {
        return dir.resolve("tenants");
    }

    Path tenantFile(String id) {
        return tenantsDir().resolve(id);
    }

    List<Tenant> tenants() {
        if (!Files.isDirectory(tenantsDir())) {
            return List.of();
        }
        List<Tenant> tenants = new ArrayList<>();
        try (Stream<Path> files = Files.list(tenantsDir())) {
            files.filter(f -> !f.getFileName().toString().endsWith(".tmp")).forEach(f -> tenants.add(Tenant.read(f)));
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot list the tenants of shared server " + name, e);
        }
        return tenants;
    }

    /**
     * Bytes in the server's data directory (all tenants, WAL, catalogs), measured at most every {@link #DISK_REUSE}: a
     * database-rung tenant adds ~300 files, and walking them all for every placement made creates slower with every
     * tenant. Placement may so overshoot the disk budget by what tenants write within that time.
     */
    long diskBytes() {
        DiskUse last = disk;
        if (last != null && System.nanoTime() - last.atNanos() < DISK_REUSE.toNanos()) {
            return last.bytes();
        }
        long bytes;
        try (Stream<Path> files = Files.walk(data())) {
            bytes = files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        } catch (IOException | java.io.UncheckedIOException e) {
            return -1;
        }
        disk = new DiskUse(bytes, System.nanoTime());
        return bytes;
    }

    /**
     * Waits for one of {@link #MANAGEMENT_OPERATIONS} permits to run a management operation on a tenant (each opens one
     * or two management connections). Hundreds of tenants started, stopped or deleted at once (palisade's shutdown and
     * restart, a burst of API calls) so queue instead of exhausting the server's connections; the wait is bounded by
     * the start timeout.
     */
    Operation operation() {
        try {
            if (!operations.tryAcquire(config.startTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
                throw new PalisadeException(ErrorCode.NOT_READY, "shared server " + name + " is busy: "
                        + MANAGEMENT_OPERATIONS + " management operations on its tenants ran for the whole "
                        + config.startTimeout().toSeconds() + " s this one waited; retry later");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while waiting to manage shared server " + name,
                    e);
        }
        AtomicBoolean open = new AtomicBoolean(true);
        return () -> {
            if (open.getAndSet(false)) {
                operations.release();
            }
        };
    }

    /**
     * The tenant roles that may log in, read at most every {@link #LOGIN_REUSE} by one caller at a time (the others
     * wait for its answer), and read again after {@link #loginRolesChanged()}.
     */
    Set<String> loginRoles() {
        LoginRoles cached = loginRoles;
        if (fresh(cached)) {
            return cached.names();
        }
        synchronized (loginRead) {
            cached = loginRoles;
            if (fresh(cached)) {
                return cached.names();
            }
            long changes = loginChanges.get();
            Set<String> names = new HashSet<>();
            try (Connection c = connect("postgres"); Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery(
                            "SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname LIKE 'tenant\\_%'")) {
                while (rs.next()) {
                    names.add(rs.getString(1));
                }
            } catch (SQLException e) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot list the tenant roles of shared server "
                        + name + ": " + e.getMessage(), e);
            }
            if (loginChanges.get() == changes) {
                loginRoles = new LoginRoles(Set.copyOf(names), System.nanoTime(), changes);
            }
            return names;
        }
    }

    private boolean fresh(LoginRoles cached) {
        return cached != null && cached.changes() == loginChanges.get()
                && System.nanoTime() - cached.atNanos() < LOGIN_REUSE.toNanos();
    }

    /** Called after a role gained or lost LOGIN (or was created or dropped): the next check reads them again. */
    void loginRolesChanged() {
        loginChanges.incrementAndGet();
    }

    /**
     * Held while a tenant's role gains or loses privileges on an object every tenant shares (the shared database's ACL
     * is one catalog row): PostgreSQL fails the second of two concurrent updates of one row with "tuple concurrently
     * updated" instead of waiting for the first.
     */
    Object sharedRowsLock() {
        return sharedRows;
    }
}
