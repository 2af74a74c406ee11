package io.palisade.agent;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.LoopVolumes;
import io.palisade.host.PostgresBinaries;
import io.palisade.host.PostgresServer;
import io.palisade.host.Processes;
import io.palisade.host.SafeFiles;
import io.palisade.host.ServiceUser;
import io.palisade.host.TenantUsers;
import io.palisade.pgwire.TenantBootstrap;
import io.palisade.spi.AdminAccess;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.spi.TenantPlace;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code process} rung: each database is its own PostgreSQL server process, run as the unprivileged service user,
 * with its own data directory copied from a pre-initialised template (no initdb per create), its own loopback port, and
 * CPU/memory caps through a cgroup, and its own capped disk: an ext4 image of the plan's {@code disk_mb}
 * loop-mounted on the data directory (see {@link ProcessInstanceFiles}), so that a tenant that fills its disk gets
 * "disk full" (53100) and its neighbours and the metadata store do not. Where the host cannot loop-mount (not root, no
 * loop devices) the driver says so in its probe and logs a warning, and data directories share the host's disk
 * uncapped.
 * Thread-safe for different ids; the caller serialises calls for one id.
 */
public final class ProcessDriver implements IsolationDriver {
    private static final Logger log = LoggerFactory.getLogger(ProcessDriver.class);
    static final String NAME = "process";
    /** The superuser (and its replication) only over the private Unix socket; tenants only with SCRAM over TCP. */
    static final String PG_HBA = """
            # palisade: the superuser only over the private Unix socket; tenants only with SCRAM over TCP
            local   all           palisade_admin                 trust
            local   replication   palisade_admin                 trust
            host    all           all             127.0.0.1/32   scram-sha-256
            host    all           all             ::1/128        scram-sha-256
            """;
    private final String cgroupPrefix;

    private final ProcessDriverConfig config;
    private final ProcessInstanceFiles files;
    private final TenantUsers users;
    private final Map<String, PostgresServer> servers = new ConcurrentHashMap<>();

    /** A driver that gives instances capped volumes where this host can loop-mount them. */
    public ProcessDriver(ProcessDriverConfig config) {
        this(config, null);
    }

    /** A driver with the given volume support ({@code null}: probe this host). */
    ProcessDriver(ProcessDriverConfig config, LoopVolumes volumes) {
        this.config = requireNonNull(config, "config is null");
        this.cgroupPrefix = cgroupPrefix(config.instancesDir());
        try {
            Files.createDirectories(config.instancesDir());
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot create " + config.instancesDir(), e);
        }
        config.user().checkCanTraverse(config.instancesDir());
        // the trial mount goes next to the instances, never among them (listInstances would take it for one)
        Path scratch = config.instancesDir().toAbsolutePath().getParent();
        LoopVolumes probed = volumes != null ? volumes : LoopVolumes.probe(scratch);
        this.users = new TenantUsers(config.user());
        this.files = new ProcessInstanceFiles(config.instancesDir(), config.user().dropsPrivileges(), users::forInstance,
                probed);
        if (!probed.supported()) {
            log.warn("process rung: disk_enforced=false: new instances' data directories share the host's disk with no"
                    + " cap, so one tenant can fill it for everyone ({}); run palisade as root on a host with loop"
                    + " devices (/dev/loop-control) to give each instance a volume of its plan's disk_mb",
                    probed.reason());
        }
    }

    /**
     * The cgroup name prefix of this driver's instances: {@code proc-<8 hex of the instances dir>-}, so that several
     * palisade servers (or test runs) sharing a cgroup parent never take each other's groups for orphans.
     */
    public static String cgroupPrefix(Path instancesDir) {
        return "proc-" + String.format("%08x", instancesDir.toAbsolutePath().normalize().toString().hashCode()) + "-";
    }

    /** The cgroup of one instance. */
    public String cgroupName(String id) {
        return cgroupPrefix + id;
    }

    @Override
    public io.palisade.spi.Rung rung() {
        return io.palisade.spi.Rung.PROCESS;
    }

    @Override
    public DriverProbe probe() {
        Cgroups cgroups = config.cgroups();
        String caps = cgroups.mode() == Cgroups.Mode.NONE
                ? "WITHOUT CPU/memory caps (" + cgroups.reason() + ")"
                : "with CPU/memory caps (" + cgroups.reason() + ")";
        LoopVolumes volumes = files.volumes();
        String disk = volumes.supported()
                ? ", disk_enforced: true (the plan's disk_mb: " + volumes.reason() + ")"
                : ", disk_enforced: false, data on the host's shared disk WITHOUT a cap (" + volumes.reason() + ")";
        return new DriverProbe(
                NAME,
                true,
                false,
                "cgroup-" + cgroups.mode().name().toLowerCase(java.util.Locale.ROOT),
                "one PostgreSQL process per database, each as an OS user of its own ("
                        + (config.user().dropsPrivileges() ? "'" + config.user().name() + "-<id>'" : "palisade's user: "
                        + "not root, so one user for all") + "), " + caps + disk);
    }

    @Override
    public RunningInstance provision(InstanceSpec spec, TenantCredentials credentials, ProgressListener progress) {
        Path dir = instanceDir(spec.id());
        if (Files.exists(dir)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "instance " + spec.id() + " already exists on this host");
        }
        return startNew(spec, credentials, "provision", progress, () -> {
            progress.phase("preparing template for PostgreSQL " + spec.version().release());
            Path template = template(spec.version());
            progress.phase("copying template data directory");
            files.create(spec.id(), spec.plan().diskMb(), template, Duration.ofMinutes(2));
        });
    }

    /** Lays out a new instance's data directory; may throw, after which everything of the instance is removed. */
    @FunctionalInterface
    private interface DataSetup {
        void layOut() throws IOException;
    }

    /** A new instance: its data laid out, started, its tenant's password set; on failure nothing of it remains. */
    private RunningInstance startNew(InstanceSpec spec, TenantCredentials credentials, String verb,
            ProgressListener progress, DataSetup setup) {
        boolean restore = verb.equals("restore");
        try {
            setup.layOut();
            files.secure(spec.id(), true);
            progress.phase(restore ? "starting postgres: WAL replay, then promotion" : "starting postgres");
            RunningInstance instance = restore ? start(spec, config.restoreTimeout(), 1) : start(spec, ProgressListener.NONE);
            progress.phase("setting credentials");
            setPassword(spec.id(), credentials.username(), credentials.password());
            return instance;
        } catch (IOException | RuntimeException e) {
            destroy(spec.id());
            if (e instanceof PalisadeException pe) {
                throw pe;
            }
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot " + verb + " " + spec.id() + ": " + e.getMessage(),
                    e);
        }
    }

    @Override
    public RunningInstance start(InstanceSpec spec, ProgressListener progress) {
        return start(spec, config.startTimeout(), 3);
    }

    /**
     * Starts the server and waits until it answers, within {@code timeout}; retries on another port up to
     * {@code attempts} times (a free port can be taken between probe and bind). A restored server gets one attempt with
     * a long bound: its first start replays WAL, and a second attempt would replay it again.
     */
    private RunningInstance start(InstanceSpec spec, Duration timeout, int attempts) {
        String id = spec.id();
        PostgresServer existing = servers.get(id);
        if (existing != null && existing.isAlive()) {
            return running(id, existing);
        }
        files.mount(id);
        if (!Files.exists(data(id).resolve("PG_VERSION"))) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "instance " + id + " has no data directory at " + data(id) + "; it cannot be started");
        }
        try {
            files.secure(id, false);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot set the modes of " + instanceDir(id), e);
        }
        writeHba(data(id), users.forInstance(id));
        Plan plan = spec.plan();
        Optional<Cgroups.Group> group =
                config.cgroups().create(cgroupPrefix + id, plan.cpu(), (long) plan.memoryMb() * 1024 * 1024);
        PostgresBinaries binaries = PostgresBinaries.install(config.cacheDir(), spec.version());
        Map<String, String> settings = settings(plan, files.capped(id));
        Path portFile = instanceDir(id).resolve("port");
        Optional<PostgresServer> adopted = PostgresServer.adopt(portFile,
                port -> options(id, binaries, port, group, settings, timeout));
        if (adopted.isPresent()) {
            servers.put(id, adopted.get());
            log.info("took over {} (pid {}, {}), left running by an earlier run of palisade", id, adopted.get().pid(),
                    adopted.get().endpoint());
            return running(id, adopted.get());
        }
        // a server still running that was not taken over goes first, or its recorded port would look taken
        PostgresServer.stopLeftover(data(id));
        PostgresServer server = PostgresServer.startOnRecordedPort(id, portFile,
                port -> options(id, binaries, port, group, settings, timeout), attempts);
        servers.put(id, server);
        log.info("started {} (pid {}, {})", id, server.pid(), server.endpoint());
        return running(id, server);
    }

    private PostgresServer.Options options(String id, PostgresBinaries binaries, int port,
            Optional<Cgroups.Group> group, Map<String, String> settings, Duration timeout) {
        return new PostgresServer.Options(binaries, data(id), "127.0.0.1", port, PostgresServer.socketDirFor(id),
                files.log(id), users.forInstance(id), group, settings, timeout);
    }

    private static Map<String, String> settings(Plan plan, boolean capped) {
        Map<String, String> settings = new LinkedHashMap<>();
        long sharedBuffersMb = Math.max(16, plan.memoryMb() / 4);
        settings.put("shared_buffers", sharedBuffersMb + "MB");
        settings.put("effective_cache_size", Math.max(32, plan.memoryMb() / 2) + "MB");
        settings.put("work_mem", Math.max(1, plan.memoryMb() / 64) + "MB");
        settings.put("maintenance_work_mem", Math.max(16, plan.memoryMb() / 16) + "MB");
        settings.put("max_connections", "100");
        settings.put("password_encryption", "scram-sha-256");
        settings.put("log_line_prefix", "%m [%p] %q%u@%d ");
        settings.put("log_connections", "off");
        settings.put("dynamic_shared_memory_type", "posix");
        // a move's logical replication: this server publishing (wal_level) or subscribing (launcher, apply worker and
        // table-sync workers, next to the parallel workers)
        settings.put("wal_level", "logical");
        settings.put("max_worker_processes", Integer.toString(Math.max(6, plan.cpu() * 2 + 4)));
        settings.put("max_parallel_workers", Integer.toString(plan.cpu()));
        if (capped) {
            // WAL has its own volume, sized for this (ProcessInstanceFiles.walMb)
            settings.put("max_wal_size", ProcessInstanceFiles.maxWalMb(plan.diskMb()) + "MB");
            settings.put("min_wal_size", "32MB");
        }
        return settings;
    }

    private RunningInstance running(String id, PostgresServer server) {
        return new RunningInstance(
                id, server.endpoint(), server.startedAt(), Map.of("pid", Long.toString(server.pid()), "driver", NAME));
    }

    @Override
    public void stop(String id) {
        PostgresServer server = servers.remove(id);
        if (server != null) {
            server.close();
        }
        PostgresServer.stopLeftover(data(id));
        // the volume goes with its server; start, a restart of palisade or a host reboot mount it again
        files.unmount(id);
    }

    @Override
    public void destroy(String id) {
        stop(id);
        Processes.run(List.of("rm", "-rf", instanceDir(id).toString()), Duration.ofMinutes(2), null);
        Processes.run(List.of("rm", "-rf", PostgresServer.socketDirFor(id).toString()), Duration.ofSeconds(30), null);
        config.cgroups().find(cgroupPrefix + id).ifPresent(Cgroups.Group::remove);
        users.remove(id);
    }

    @Override
    public void setPassword(String id, String username, String password) {
        PostgresServer server = servers.get(id);
        if (server == null || !server.isAlive()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "instance " + id + " is not running; start it first");
        }
        try (Connection connection = AdminConnection.open(server.socketFile(), "postgres");
                Statement statement = connection.createStatement()) {
            statement.execute(TenantBootstrap.LOCAL_COMMIT);
            // a tenant role must never be a superuser here (a restored catalog could say otherwise): take it away
            statement.execute(TenantBootstrap.stripPowers(username));
            statement.execute(TenantBootstrap.lockDownCatalog(PostgresServer.ADMIN_ROLE));
            statement.execute(TenantBootstrap.setPassword(username, password));
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot set the password of " + id + ": " + e.getMessage(), e);
        }
    }

    @Override
    public AdminAccess adminAccess(String id) {
        PostgresServer server = servers.get(id);
        if (server == null || !server.isAlive()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "instance " + id + " is not running; start it first");
        }
        return new AdminAccess(new AdminAccess.UnixSocket(server.socketFile()), PostgresServer.ADMIN_ROLE, Optional.empty());
    }

    /**
     * The tenant's database on the instance's own server: the one database besides {@code postgres} and the templates,
     * namespace {@code public}, its owner as the role; the superuser over the private socket.
     */
    @Override
    public TenantPlace tenantPlace(String id) {
        AdminAccess admin = adminAccess(id);
        PostgresServer server = servers.get(id);
        try (Connection connection = AdminConnection.open(server.socketFile(), "postgres");
                Statement statement = connection.createStatement();
                ResultSet rows = statement.executeQuery("select datname, pg_get_userbyid(datdba) from pg_database"
                        + " where datname not in ('postgres', 'template0', 'template1') order by oid")) {
            if (!rows.next()) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "instance " + id + " has no tenant database");
            }
            String database = rows.getString(1);
            String owner = rows.getString(2);
            if (rows.next()) {
                throw new PalisadeException(ErrorCode.CONFLICT, "instance " + id + " has more than one database ("
                        + database + ", " + rows.getString(1) + "); a move takes one: drop the others first");
            }
            return new TenantPlace(admin, database, "public", owner, "public", server.endpoint());
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot read the databases of " + id + ": "
                    + e.getMessage(), e);
        }
    }

    @Override
    public boolean supportsRestore() {
        return true;
    }

    @Override
    public RunningInstance provisionFrom(
            InstanceSpec spec, TenantCredentials credentials, Path dataDirectory, ProgressListener progress) {
        Path dir = instanceDir(spec.id());
        if (Files.exists(dir)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "instance " + spec.id() + " already exists on this host");
        }
        try {
            return startNew(spec, credentials, "restore", progress, () -> {
                if (!Files.exists(dataDirectory.resolve("PG_VERSION"))) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                            "cannot restore " + spec.id() + ": " + dataDirectory + " is not a PostgreSQL data directory");
                }
                progress.phase("moving the restored data directory into place");
                if (files.volumes().supported()) {
                    // onto the instance's own volume: a copy; the source is removed below
                    files.create(spec.id(), spec.plan().diskMb(), dataDirectory, Duration.ofMinutes(30));
                } else {
                    Files.createDirectories(dir);
                    try {
                        Files.move(dataDirectory, data(spec.id()));
                    } catch (IOException e) {
                        // another file system: copy, then remove the source below
                        Processes.check(List.of("cp", "-a", "--reflink=auto", dataDirectory.toString(),
                                data(spec.id()).toString()), Duration.ofMinutes(30));
                    }
                }
                Processes.check(List.of("chmod", "700", data(spec.id()).toString()), Duration.ofSeconds(10));
                // this rung's own server configuration, whatever the source (e.g. a vm guest) had
                Path conf = data(spec.id()).resolve("postgresql.conf");
                Files.deleteIfExists(conf);
                Files.copy(template(spec.version()).resolve("postgresql.conf"), conf);
            });
        } finally {
            Processes.run(List.of("rm", "-rf", dataDirectory.toString()), Duration.ofMinutes(5), null);
        }
    }

    @Override
    public void rename(String fromId, String toId) {
        if (isRunning(fromId)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "instance " + fromId + " is running; stop it before renaming");
        }
        Path from = instanceDir(fromId);
        Path to = instanceDir(toId);
        if (!Files.isDirectory(from)) {
            throw new PalisadeException(ErrorCode.NOT_FOUND, "instance " + fromId + " has nothing on this host to rename");
        }
        if (Files.exists(to)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "instance " + toId + " already exists on this host");
        }
        PostgresServer.stopLeftover(data(fromId));
        files.unmount(fromId);
        try {
            Files.move(from, to, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot rename instance " + fromId + " to " + toId, e);
        }
        Processes.run(List.of("rm", "-rf", PostgresServer.socketDirFor(fromId).toString()), Duration.ofSeconds(30), null);
        config.cgroups().find(cgroupPrefix + fromId).ifPresent(Cgroups.Group::remove);
        users.remove(fromId); // the next start gives the files to the new id's user
        log.info("renamed instance {} to {}", fromId, toId);
    }

    /**
     * Writes palisade's pg_hba.conf into a data directory the service user can write: a new file renamed over the old
     * one, so that root never follows a link a tenant's server may have put there.
     */
    private void writeHba(Path dataDir, ServiceUser owner) {
        Path hba = dataDir.resolve("pg_hba.conf");
        Path tmp = dataDir.resolve("pg_hba.conf.palisade-" + Long.toHexString(System.nanoTime()));
        try {
            Files.writeString(tmp, PG_HBA, java.nio.file.StandardOpenOption.CREATE_NEW,
                    java.nio.file.StandardOpenOption.WRITE);
            owner.chown(tmp);
            Files.move(tmp, hba, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // best effort
            }
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot write " + hba, e);
        }
    }

    @Override
    public boolean isRunning(String id) {
        PostgresServer server = servers.get(id);
        return server != null && server.isAlive();
    }

    @Override
    public Set<String> listInstances() {
        Set<String> ids = new TreeSet<>(servers.keySet());
        // only this rung's groups: other rungs (vm-…) and other processes share the parent
        config.cgroups().list().stream()
                .filter(name -> name.startsWith(cgroupPrefix))
                .map(name -> name.substring(cgroupPrefix.length()))
                .forEach(ids::add);
        if (!Files.isDirectory(config.instancesDir())) {
            return ids;
        }
        try (Stream<Path> dirs = Files.list(config.instancesDir())) {
            dirs.filter(Files::isDirectory).map(p -> p.getFileName().toString())
                    .filter(name -> !name.startsWith("."))
                    .forEach(ids::add);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot list " + config.instancesDir(), e);
        }
        return ids;
    }

    @Override
    public InstanceStats stats(String id) {
        PostgresServer server = servers.get(id);
        boolean running = server != null && server.isAlive();
        Optional<Cgroups.Group> group = config.cgroups().find(cgroupPrefix + id);
        return new InstanceStats(
                running,
                running ? server.pid() : -1,
                running ? Duration.between(server.startedAt(), Instant.now()).toSeconds() : 0,
                group.map(Cgroups.Group::cpuMillis).orElse(-1L),
                group.map(Cgroups.Group::memoryBytes).orElse(-1L),
                diskBytes(id, running));
    }

    @Override
    public List<String> logTail(String id, int lines) {
        // an instance directory made by an older palisade is the service user's: never follow a link put there
        return SafeFiles.tailLines(files.log(id), lines, 256L * 1024);
    }

    /**
     * Stops every instance, unless {@link ProcessDriverConfig#keepServersOnClose()}: then they keep running (each in a
     * session of its own, so no signal meant for palisade reaches them) and the next driver on these directories takes
     * them over when the reconciler starts them ({@link PostgresServer#adopt}).
     */
    @Override
    public void close() {
        if (config.keepServersOnClose()) {
            servers.clear();
            return;
        }
        servers.keySet().forEach(this::stop);
    }

    /** The bytes of the instance's files; -1 for a capped instance that is stopped (its volumes are not mounted). */
    private long diskBytes(String id, boolean running) {
        if (!files.capped(id)) {
            return ProcessInstanceFiles.directoryBytes(data(id));
        }
        return running ? ProcessInstanceFiles.directoryBytes(data(id))
                + Math.max(0, ProcessInstanceFiles.directoryBytes(files.wal(id))) : -1;
    }

    Path instanceDir(String id) {
        return files.dir(id);
    }

    private Path data(String id) {
        return files.data(id);
    }

    /**
     * The pre-initialised data directory all instances of a version are copied from: superuser {@code palisade_admin}
     * (no password: reachable only over the private socket), tenant role {@code app} owning database {@code app}.
     */
    Path template(PostgresVersion version) throws IOException {
        Path templates = config.cacheDir().resolve("templates");
        Path template = templates.resolve("process-" + version.release());
        if (Files.exists(template.resolve(".complete"))) {
            return template;
        }
        Files.createDirectories(templates);
        try (var lockFile = new RandomAccessFile(templates.resolve(".lock").toFile(), "rw");
                FileLock ignored = lockFile.getChannel().lock()) {
            if (Files.exists(template.resolve(".complete"))) {
                return template;
            }
            log.info("building the process template for PostgreSQL {}", version.release());
            // a build cut short by a killed control plane may have left its server running
            PostgresServer.stopLeftover(template);
            Processes.run(List.of("rm", "-rf", template.toString()), Duration.ofMinutes(1), null);
            PostgresBinaries binaries = PostgresBinaries.install(config.cacheDir(), version);
            PostgresServer.initdb(binaries, template, config.user());
            writeHba(template, config.user());
            try (PostgresServer server = PostgresServer.start(new PostgresServer.Options(
                    binaries,
                    template,
                    "127.0.0.1",
                    PostgresServer.freePort(),
                    PostgresServer.socketDirFor("template-" + version.major()),
                    templates.resolve("template-" + version.major() + ".log"),
                    config.user(),
                    Optional.empty(),
                    Map.of(),
                    config.startTimeout()))) {
                try (Connection connection = AdminConnection.open(server.socketFile(), "postgres");
                        Statement statement = connection.createStatement()) {
                    statement.execute(TenantBootstrap.createRole("app"));
                    statement.execute(TenantBootstrap.createDatabase("app", "app"));
                    for (String sql : TenantBootstrap.CLOSE_SERVER_DATABASES) {
                        statement.execute(sql);
                    }
                } catch (SQLException e) {
                    throw new PalisadeException(ErrorCode.INTERNAL, "cannot prepare template: " + e.getMessage(), e);
                }
            }
            Files.deleteIfExists(template.resolve("postmaster.opts"));
            Files.createFile(template.resolve(".complete"));
            return template;
        }
    }
}
