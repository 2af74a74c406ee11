package io.palisade.agent.shared;

import static java.util.Objects.requireNonNull;

import io.palisade.agent.AdminConnection;
import io.palisade.host.Cgroups;
import io.palisade.host.PostgresBinaries;
import io.palisade.host.PostgresServer;
import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import io.palisade.host.TenantUsers;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.PostgresVersion;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
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
import java.util.concurrent.atomic.AtomicReference;
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
    private final SharedServerConfig config;
    private volatile PostgresServer server;
    private volatile ServiceUser user;
    private volatile boolean stopping;
    /** Management operations on tenants (create, start, stop, delete, password, stats) that run at once on a server. */
    static final int MANAGEMENT_OPERATIONS = 4;
    private final java.util.concurrent.Semaphore operations =
            new java.util.concurrent.Semaphore(MANAGEMENT_OPERATIONS, true);
    private final Object sharedRows = new Object();

    /** A permit to run one management operation (see {@link #operation()}); closing it lets the next one run. */
    interface Operation extends AutoCloseable {
        @Override
        void close();
    }

    /** When the death of which postmaster was first noticed (by {@link #crashed}). */
    private final AtomicReference<Noticed> crashNoticed = new AtomicReference<>();

    private record Noticed(PostgresServer postmaster, Instant at) {}

    SharedServer(String name, PostgresVersion version, SharedServerConfig config) {
        this.name = requireNonNull(name, "name is null");
        this.version = requireNonNull(version, "version is null");
        this.config = requireNonNull(config, "config is null");
        this.dir = config.serversDir().resolve(name);
    }

    String name() {
        return name;
    }

    /**
     * The OS user this server runs as: one of its own (see {@link TenantUsers}), so that neither a process-rung tenant
     * nor another shared server can read its files. A data directory made when shared servers ran as the service user
     * is given to it.
     */
    private ServiceUser user() {
        ServiceUser current = user;
        if (current == null) {
            current = new TenantUsers(config.user()).forInstance(name);
            user = current;
        }
        return current;
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

    /** The previous part of the JSON log (see {@link #capLog}). */
    Path previousJsonLog() {
        return data().resolve("log").resolve("postgres.json.1");
    }

    /** Bytes one part of the JSON log may reach before the monitor starts the next: the log holds at most two. */
    static final long LOG_PART_BYTES = 64L << 20;

    /**
     * Keeps the log bounded whatever tenants log: once the current part passes {@link #LOG_PART_BYTES}, it becomes the
     * previous part (replacing the older one) and the server is told to start a new file. Only the monitor calls this.
     */
    void capLog() throws SQLException {
        Path current = jsonLog();
        try {
            if (!Files.exists(current) || Files.size(current) < LOG_PART_BYTES) {
                return;
            }
            Files.move(current, previousJsonLog(), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot rotate the log of shared server " + name, e);
        }
        onMonitorConnection(c -> {
            try (Statement s = c.createStatement()) {
                s.execute("SELECT pg_rotate_logfile()");
            }
            return null;
        });
        log.info("shared server {}: log rotated at {} MB", name, LOG_PART_BYTES >> 20);
    }

    private Path data() {
        return dir.resolve("data");
    }

    boolean isAlive() {
        PostgresServer current = server;
        return current != null && current.isAlive();
    }

    /**
     * Whether the postmaster this palisade started died without being stopped: a crash (the first call that sees it
     * notes the time). A server that was never started since palisade started, or was stopped on purpose, has not
     * crashed.
     */
    boolean crashed() {
        PostgresServer current = server;
        boolean crashed = current != null && !current.isAlive() && !stopping;
        if (crashed) {
            crashNoticed.getAndUpdate(n -> n != null && n.postmaster() == current ? n
                    : new Noticed(current, Instant.now()));
        }
        return crashed;
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

    /**
     * Creates the server (first use) and starts it; returns at once if it runs. When this start ended a crash (see
     * {@link #crashed}), returns when the crash was first noticed.
     */
    synchronized Optional<Instant> ensureRunning() {
        if (isAlive()) {
            return Optional.empty();
        }
        PostgresServer dead = server;
        boolean recovering = crashed();
        stopping = false;
        if (!Files.exists(dir.resolve(".bootstrapped"))) {
            create();
        }
        closeIdle();
        server = start();
        if (!recovering) {
            return Optional.empty();
        }
        Noticed noticed = crashNoticed.get();
        return Optional.of(noticed != null && noticed.postmaster() == dead ? noticed.at() : Instant.now());
    }

    private void create() {
        log.info("creating shared server {} (PostgreSQL {})", name, version.release());
        // a creation cut short by a killed control plane may have left its bootstrap server running
        PostgresServer.stopLeftover(data());
        Processes.run(List.of("rm", "-rf", data().toString()), Duration.ofMinutes(1), null);
        PostgresBinaries binaries = PostgresBinaries.install(config.cacheDir(), version);
        PostgresServer.initdb(binaries, data(), user());
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

    private void giveToUser() {
        try {
            if (user().dropsPrivileges() && Files.isDirectory(data(), LinkOption.NOFOLLOW_LINKS)
                    && (Integer) Files.getAttribute(data(), "unix:uid", LinkOption.NOFOLLOW_LINKS) != user().uid()) {
                log.info("giving shared server {} to its own OS user {}", name, user());
                user().chown(data());
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot inspect the data of shared server " + name, e);
        }
    }

    /** Takes over the server an earlier run of palisade left running, if it is exactly this one; else starts it. */
    private PostgresServer start() {
        Optional<Cgroups.Group> group = config.cgroups().create(cgroupName(), config.serverCpu(),
                (long) config.serverMemoryMb() * 1024 * 1024);
        PostgresBinaries binaries = PostgresBinaries.install(config.cacheDir(), version);
        Optional<PostgresServer> adopted = PostgresServer.adopt(dir.resolve("port"),
                port -> options(binaries, port, group));
        if (adopted.isPresent()) {
            server = adopted.get();
            log.info("took over shared server {} (pid {}, {}), left running by an earlier run of palisade", name,
                    adopted.get().pid(), adopted.get().endpoint());
            return adopted.get();
        }
        PostgresServer.stopLeftover(data());
        endOrphans();
        giveToUser();
        PostgresServer started = PostgresServer.startOnRecordedPort("shared server " + name, dir.resolve("port"),
                port -> options(binaries, port, group), 3);
        server = started;
        log.info("started shared server {} (pid {}, {})", name, started.pid(), started.endpoint());
        return started;
    }

    private PostgresServer.Options options(PostgresBinaries binaries, int port, Optional<Cgroups.Group> group) {
        return new PostgresServer.Options(binaries, data(), "127.0.0.1", port, PostgresServer.socketDirFor(socketName()),
                dir.resolve("postgres.log"), user(), group, settings(), config.startTimeout());
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
        // a move's logical replication: a tenant's data published from here (wal_level) or subscribed to here (apply
        // and table-sync workers next to the parallel workers)
        settings.put("wal_level", "logical");
        // a move's replication slot must not keep WAL for everyone until the disk is full (a stalled or abandoned copy):
        // past this it is invalidated and the move fails
        settings.put("max_slot_wal_keep_size", Math.max(1024, config.serverDiskMb() / 8) + "MB");
        settings.put("max_worker_processes", Integer.toString(Math.max(8, config.serverCpu() * 2 + 6)));
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

    /**
     * Ends what is left of a postmaster that died without shutting down (SIGKILL, OOM kill). Its backends and helpers
     * run on until they next wait for something (a CPU-bound statement runs until it ends or times out), and while any
     * of them still has the old shared memory attached, a new postmaster refuses to start ("pre-existing shared memory
     * block is still in use"). They are found by their working directory, which PostgreSQL sets to the data
     * directory, and get SIGQUIT (what a postmaster sends its children when one of them crashes), then SIGKILL if still
     * there after a bound. Nothing is lost that crash recovery would keep: the new postmaster replays the WAL.
     */
    private void endOrphans() {
        List<Long> orphans = processesIn(data());
        if (orphans.isEmpty()) {
            return;
        }
        log.warn("shared server {}: ending {} process(es) its dead postmaster left behind (pids {})", name,
                orphans.size(), orphans);
        orphans.forEach(pid -> Processes.signal(pid, "QUIT"));
        for (long pid : orphans) {
            if (!Processes.awaitExit(pid, Duration.ofSeconds(5))) {
                Processes.signal(pid, "KILL");
                if (!Processes.awaitExit(pid, Duration.ofSeconds(5))) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "shared server " + name + ": process "
                            + pid + " of its dead postmaster survives SIGKILL (stuck in the kernel?); it keeps the "
                            + "server from restarting until it exits");
                }
            }
        }
    }

    /** Processes whose working directory is {@code dir} (PostgreSQL processes of that data directory). */
    private static List<Long> processesIn(Path dir) {
        Path real;
        try {
            real = dir.toRealPath();
        } catch (IOException e) {
            return List.of();
        }
        long self = ProcessHandle.current().pid();
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            return procs.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit))
                    .filter(p -> {
                        try {
                            return Files.readSymbolicLink(p.resolve("cwd")).equals(real);
                        } catch (IOException | UnsupportedOperationException | SecurityException e) {
                            return false; // gone, a zombie, or not ours to inspect
                        }
                    })
                    .map(p -> Long.parseLong(p.getFileName().toString()))
                    .filter(pid -> pid != self)
                    .toList();
        } catch (IOException | java.io.UncheckedIOException e) {
            log.warn("cannot look for processes left in {}: {}", dir, e.getMessage());
            return List.of();
        }
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
            user().chown(file);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot write pg_hba.conf of shared server " + name, e);
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

    /** The superuser over the private socket, for a move. */
    io.palisade.spi.AdminAccess adminAccess() {
        return new io.palisade.spi.AdminAccess(new io.palisade.spi.AdminAccess.UnixSocket(running().socketFile()),
                PostgresServer.ADMIN_ROLE, java.util.Optional.empty());
    }

    /** A new management connection as the superuser over the private socket; the caller closes it. */
    Connection connect(String database) {
        return AdminConnection.open(running().socketFile(), database);
    }

    /** Idle management connections by database, kept so that a tenant's create does not start a backend. */
    private final Map<String, java.util.concurrent.ConcurrentLinkedDeque<Connection>> idle =
            new java.util.concurrent.ConcurrentHashMap<>();
    private static final int MAX_IDLE_PER_DATABASE = 4;

    /**
     * Runs {@code work} in one transaction on a pooled management connection to {@code database}: committed when it
     * returns, rolled back when it throws. A connection that failed is closed, never given back.
     */
    <T> T inTransaction(String database, SqlWork<T> work) throws SQLException {
        var deque = idle.computeIfAbsent(database, d -> new java.util.concurrent.ConcurrentLinkedDeque<>());
        Connection c = deque.pollFirst();
        while (c != null && !c.isValid(2)) {
            closeQuietly(c);
            c = deque.pollFirst();
        }
        if (c == null) {
            c = connect(database);
        }
        boolean healthy = false;
        try {
            c.setAutoCommit(false);
            T result = work.run(c);
            c.commit();
            healthy = true;
            return result;
        } finally {
            if (!healthy) {
                try {
                    c.rollback();
                    healthy = true;
                } catch (SQLException ignored) {
                    // the connection is broken: closed below
                }
            }
            if (healthy && deque.size() < MAX_IDLE_PER_DATABASE) {
                c.setAutoCommit(true);
                deque.addFirst(c);
            } else {
                closeQuietly(c);
            }
        }
    }

    private void closeIdle() {
        idle.values().forEach(deque -> {
            for (Connection c = deque.pollFirst(); c != null; c = deque.pollFirst()) {
                closeQuietly(c);
            }
        });
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException ignored) {
            // gone either way
        }
    }

    // ---- spare databases: CREATE DATABASE copies template1 (~7 MB through the WAL); a create takes a ready one ----

    static final String SPARE_PREFIX = "spare_";
    private final java.util.Deque<String> spares = new java.util.ArrayDeque<>();
    private boolean sparesLoaded;

    /** A spare database (a copy of template1, nobody may connect) to rename for a new tenant, if one is ready. */
    synchronized Optional<String> takeSpare() {
        loadSpares();
        return Optional.ofNullable(spares.pollFirst());
    }

    /** Creates spare databases until {@code target} are ready (the monitor calls this off the create path). */
    void refillSpares(int target) throws SQLException {
        synchronized (this) {
            loadSpares();
            if (spares.size() >= target) {
                return;
            }
        }
        String name = SPARE_PREFIX
                + Long.toString(java.util.concurrent.ThreadLocalRandom.current().nextLong(1L << 60), 36);
        try (Connection c = connect("postgres"); Statement s = c.createStatement()) {
            s.execute("CREATE DATABASE " + name);
            s.execute("REVOKE ALL ON DATABASE " + name + " FROM PUBLIC");
        }
        synchronized (this) {
            spares.addLast(name);
        }
    }

    private void loadSpares() {
        if (sparesLoaded) {
            return;
        }
        try (Connection c = connect("postgres"); Statement s = c.createStatement();
                java.sql.ResultSet rs = s.executeQuery(
                        "SELECT datname FROM pg_database WHERE datname LIKE 'spare\\_%' ORDER BY oid")) {
            while (rs.next()) {
                spares.addLast(rs.getString(1));
            }
            sparesLoaded = true;
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot list the spare databases of " + name + ": "
                    + e.getMessage(), e);
        }
    }

    private volatile Connection monitorConnection;

    /**
     * Runs {@code work} on the monitor's own long-lived management connection (opened on first use, reopened after
     * a failure), so that checking a server every second does not start a backend every second. Only the monitor
     * thread calls this.
     */
    <T> T onMonitorConnection(SqlWork<T> work) throws SQLException {
        if (monitorConnection == null || monitorConnection.isClosed()) {
            monitorConnection = connect("postgres");
        }
        try {
            return work.run(monitorConnection);
        } catch (SQLException e) {
            closeMonitorConnection();
            throw e;
        }
    }

    @FunctionalInterface
    interface SqlWork<T> {
        T run(Connection connection) throws SQLException;
    }

    private void closeMonitorConnection() {
        Connection current = monitorConnection;
        monitorConnection = null;
        if (current != null) {
            try {
                current.close();
            } catch (SQLException ignored) {
                // it is gone either way
            }
        }
    }

    /** Stops the server (fast shutdown, bounded). Its tenants stay recorded. Idempotent. */
    synchronized void stop() {
        stopping = true;
        closeMonitorConnection();
        closeIdle();
        PostgresServer current = server;
        server = null;
        if (current != null) {
            current.close();
        }
        PostgresServer.stopLeftover(data());
    }

    /** The running postmaster's pid (the pool kills it to simulate a crash). */
    long pid() {
        return running().pid();
    }

    /** Stops the server and removes everything it has on the host. */
    synchronized void destroy() {
        stop();
        Processes.run(List.of("rm", "-rf", dir.toString()), Duration.ofMinutes(5), null);
        Processes.run(List.of("rm", "-rf", PostgresServer.socketDirFor(socketName()).toString()),
                Duration.ofSeconds(30),
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
            files.filter(f -> !f.getFileName().toString().contains("."))
                    .forEach(f -> tenants.add(renamedToKey(f, Tenant.read(f))));
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot list the tenants of shared server " + name, e);
        }
        return tenants;
    }

    /**
     * A schema-rung record written by an older palisade under the bare id is renamed to its key (see
     * {@link SharedServerPool#key}), with its stop marker.
     */
    private Tenant renamedToKey(Path file, Tenant tenant) {
        String key = SharedServerPool.key(tenant.id(), tenant.layout());
        if (!file.getFileName().toString().equals(key)) {
            try {
                Path marker = file.resolveSibling(file.getFileName() + SharedServerPool.STOPPED_SUFFIX);
                if (Files.exists(marker)) {
                    Files.move(marker, tenantFile(key + SharedServerPool.STOPPED_SUFFIX),
                            java.nio.file.StandardCopyOption.ATOMIC_MOVE);
                }
                Files.move(file, tenantFile(key), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                throw new PalisadeException(ErrorCode.INTERNAL, "cannot rename the record of " + tenant.id()
                        + " on shared server " + name + " to " + key, e);
            }
        }
        return tenant;
    }

    private volatile long diskBytes = -1;
    private volatile long diskMeasuredNanos;

    /**
     * Bytes in the server's data directory (all tenants, WAL, catalogs), measured at most every 30 s: walking a
     * directory with hundreds of databases is too slow for every placement.
     */
    long diskBytes() {
        long now = System.nanoTime();
        if (diskBytes < 0 || now - diskMeasuredNanos > java.util.concurrent.TimeUnit.SECONDS.toNanos(30)) {
            diskBytes = measureDisk();
            diskMeasuredNanos = now;
        }
        return diskBytes;
    }

    private long measureDisk() {
        try (Stream<Path> files = Files.walk(data())) {
            return files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        } catch (IOException | java.io.UncheckedIOException e) {
            return -1;
        }
    }

    /**
     * Waits for one of {@link #MANAGEMENT_OPERATIONS} permits to run a management operation on a tenant. Hundreds of
     * tenants started, stopped or deleted at once (a restart, a burst of API calls) so queue instead of exhausting the
     * server's connections; the wait is bounded by the start timeout.
     */
    Operation operation() {
        try {
            if (!operations.tryAcquire(config.startTimeout().toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) {
                throw new PalisadeException(ErrorCode.NOT_READY, "shared server " + name + " is busy: "
                        + MANAGEMENT_OPERATIONS + " management operations on its tenants ran for the whole "
                        + config.startTimeout().toSeconds() + " s this one waited; retry later");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while waiting to manage shared server " + name,
                    e);
        }
        java.util.concurrent.atomic.AtomicBoolean open = new java.util.concurrent.atomic.AtomicBoolean(true);
        return () -> {
            if (open.getAndSet(false)) {
                operations.release();
            }
        };
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
