package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.PgProbe;
import io.palisade.host.Processes;
import io.palisade.host.SafeFiles;
import io.palisade.host.ServiceUser;
import io.palisade.host.TenantUsers;
import io.palisade.pgwire.TenantBootstrap;
import io.palisade.spi.AdminAccess;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.HostRoute;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.spi.TenantPlace;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code vm} rung: one QEMU {@code microvm} per database, its PostgreSQL on a per-database ext4 data volume (a
 * sparse copy of the image's template), in its own network namespace (see {@link VmNetwork}), capped by {@code -smp},
 * {@code -m}, a block throttle group and a cgroup, QEMU running unprivileged in its seccomp sandbox. Secrets reach the
 * guest only over the management connection (PgJDBC as the image's management role, whose template secret is
 * replaced by a fresh per-VM one at provision); tenant passwords are sent as SCRAM verifiers.
 *
 * <p>Guest RAM lives in a file. {@code provision} clones a template snapshot (built on first need per image, version
 * and plan; private copy-on-write mapping of its memory file) and cold boots only as the fallback; {@link
 * #suspend(String)} saves the device state next to the VM's own memory file and lets QEMU exit; {@link
 * #resume(InstanceSpec, ProgressListener)} restores it at most once, or cold boots from the volume.
 *
 * <p>Everything an instance has on the host is named from its id, so {@link #destroy(String)} works after a crash of
 * palisade. VMs keep running when the driver is closed. Thread-safe for calls on different ids; callers serialise
 * lifecycle calls (provision, start, stop, suspend, resume, destroy) on one id. Template builds are serialised per
 * template key.
 */
public final class VmDriver implements IsolationDriver {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final long MIB = 1024L * 1024;
    private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(1);
    private static final Duration KILL_WAIT = Duration.ofSeconds(10);
    /** Healthy TCG guests print their first marker after 1-5 s even on a loaded 2-core host; hung ones never do. */
    private static final Duration FIRST_MARKER_TIMEOUT = Duration.ofSeconds(20);
    static final String MANAGEMENT_DATABASE = "postgres";
    private static final Duration RESTORE_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration CLOCK_SYNC_TIMEOUT = Duration.ofSeconds(3);
    private static final int MAX_CLONE_FAILURES = 3;
    /** The instance ids of template VMs start with this. */
    static final String TEMPLATE_PREFIX = "tpl-";
    private static final Duration SERIAL_ACK_TIMEOUT = Duration.ofSeconds(1);
    /** A recovering guest whose data volume sees no I/O for this long is stuck, not slow. */
    static final Duration RECOVERY_STALL = Duration.ofMinutes(5);
    private static final Duration RECOVERY_PROGRESS_INTERVAL = Duration.ofSeconds(10);

    private final VmDriverConfig config;
    private final NetworkPool pool;
    private final Accelerator accelerator;
    private final long tscKhz;
    private final AtomicLong watchdogRetries = new AtomicLong();
    private final Map<String, Process> processes = new ConcurrentHashMap<>();
    private final Path templatesDir;
    private final boolean cloneCreate;
    private final Map<String, Object> templateLocks = new ConcurrentHashMap<>();
    private final Map<String, String> failedTemplates = new ConcurrentHashMap<>();
    private final Map<String, Integer> cloneFailures = new ConcurrentHashMap<>();
    /** Ids whose guest was checked to accept replication connections, with the QEMU pid it was checked for. */
    private final Map<String, Long> replicationChecked = new ConcurrentHashMap<>();
    private final VmRestore restore = new VmRestore(this);
    private final VmRename renamer = new VmRename(this);
    private final TenantUsers users;
    private final VmMoveAccess moveAccess = new VmMoveAccess(this);
    private volatile DriverProbe probe;
    private volatile String lastProbeReason;

    /** A driver that creates by cloning template snapshots kept in {@code <instances-dir>/.templates}. */
    public VmDriver(VmDriverConfig config) {
        this(config, config.instancesDir().resolve(".templates"), true);
    }

    /**
     * @param templatesDir where template snapshots are cached (one directory per image key, PostgreSQL major, vCPUs,
     *     RAM and disk; on disk, not tmpfs: the memory files are mapped by every clone)
     * @param cloneCreate whether {@code provision} clones a template snapshot (else it always cold boots)
     */
    public VmDriver(VmDriverConfig config, Path templatesDir, boolean cloneCreate) {
        this.config = requireNonNull(config, "config is null");
        this.templatesDir = requireNonNull(templatesDir, "templatesDir is null");
        this.cloneCreate = cloneCreate;
        this.pool = new NetworkPool(config.networkPool(), config.instancesDir().resolve(".slots"));
        this.users = new TenantUsers(config.serviceUser());
        this.accelerator = Accelerator.probe(config.accelerator());
        this.tscKhz = config.hostTscKhz() != 0 ? config.hostTscKhz() : Accelerator.hostTscKhz(Path.of("/proc/cpuinfo"));
        try {
            Files.createDirectories(config.instancesDir());
            // sockets QEMU connects to after dropping to -runas (saving a state) live here: each VM's QEMU runs as a
            // user of its own and reaches only its own socket (owned by that user, mode 600) in this unlistable dir
            Path mig = migrationDir();
            Files.createDirectories(mig);
            if (config.serviceUser().dropsPrivileges()) {
                Files.setAttribute(mig, "unix:uid", 0, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                Files.setAttribute(mig, "unix:gid", 0, java.nio.file.LinkOption.NOFOLLOW_LINKS);
            }
            Files.setPosixFilePermissions(mig, PosixFilePermissions.fromString(
                    config.serviceUser().dropsPrivileges() ? "rwx--x--x" : "rwx------"));
        } catch (IOException e) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "cannot create vm.instances-dir " + config.instancesDir(), e);
        }
    }

    @Override
    public io.palisade.spi.Rung rung() {
        return io.palisade.spi.Rung.VM;
    }

    public VmDriverConfig config() {
        return config;
    }

    public Accelerator accelerator() {
        return accelerator;
    }

    /** How often the boot watchdog killed and restarted a hung guest since this driver started. */
    public long watchdogRetries() {
        return watchdogRetries.get();
    }

    @Override
    public DriverProbe probe() {
        DriverProbe cached = probe;
        if (cached != null) {
            return cached;
        }
        List<String> problems = new ArrayList<>();
        if (!Files.isExecutable(config.qemuBinary())) {
            problems.add(
                    "QEMU is not installed (" + config.qemuBinary() + " missing; apt-get install qemu-system-x86)");
        }
        if (ServiceUser.currentUid() != 0) {
            problems.add("palisade is not running as root, which network namespaces, taps and cgroups need");
        }
        try {
            GuestImage.load(config.imageDir());
        } catch (PalisadeException e) {
            problems.add(e.getMessage());
        }
        boolean usable = problems.isEmpty();
        boolean preferred = usable && accelerator.kind() == Accelerator.Kind.KVM;
        String reason = accelerator.reason()
                + (usable ? "" : "; unusable: " + String.join("; ", problems))
                + (usable && !preferred ? "; not the default rung without KVM" : "");
        DriverProbe result = new DriverProbe(name(), usable, preferred, accelerator.kind().slug(), reason);
        if (!reason.equals(lastProbeReason)) {
            lastProbeReason = reason; // log each distinct outcome once
            log.info("vm driver: usable={} default={} accelerator={}: {}", usable, preferred,
                    accelerator.kind().slug(), reason);
        }
        if (usable) {
            probe = result; // an unusable probe is recomputed, e.g. once the guest image has been built
        }
        return result;
    }

    // ---------------------------------------------------------------------------------------------------- lifecycle

    @Override
    public RunningInstance provision(InstanceSpec spec, TenantCredentials credentials, ProgressListener progress) {
        requireNonNull(spec, "spec is null");
        requireNonNull(credentials, "credentials is null");
        requireNonNull(progress, "progress is null");
        String id = spec.id();
        InstancePaths paths = paths(id);
        if (Files.exists(paths.dir())) {
            throw new PalisadeException(
                    ErrorCode.CONFLICT, "vm instance " + id + " already exists on this host; destroy it first");
        }
        GuestImage image = GuestImage.load(config.imageDir());
        Path template = image.templateVolume(spec.version());
        long start = System.nanoTime();
        try {
            Files.createDirectories(paths.dir());
            Files.setPosixFilePermissions(paths.dir(), PosixFilePermissions.fromString("rwx------"));
            Boot boot = null;
            String cloneError = null;
            long volumeMs = 0;
            Optional<Template> snapshot = cloneCreate ? template(spec, image, progress) : Optional.empty();
            if (snapshot.isPresent()) {
                try {
                    progress.phase("cloning the template snapshot");
                    long copyStart = System.nanoTime();
                    copySparse(snapshot.get().volume(), paths.dataVolume());
                    volumeMs = (System.nanoTime() - copyStart) / 1_000_000;
                    boot = restoreClone(spec, image, paths, snapshot.get());
                    cloneFailures.remove(snapshot.get().dir().getFileName().toString());
                } catch (RuntimeException | IOException e) {
                    cloneError = safeMessage(e);
                    log.warn("vm {}: clone of template {} failed ({}); falling back to a cold boot", id,
                            snapshot.get().dir().getFileName(), cloneError);
                    abandonRestore(id);
                    deleteQuietly(paths.dataVolume());
                    boot = null;
                    discardTemplateAfterRepeatedFailures(snapshot.get());
                }
            }
            if (boot == null) {
                progress.phase("copying the template data volume");
                long copyStart = System.nanoTime();
                createVolume(template, paths.dataVolume(), spec.plan().diskMb());
                volumeMs = (System.nanoTime() - copyStart) / 1_000_000;
                boot = bootWithRetries(spec, image, paths, progress);
                boot.details().put("create_path", "cold");
                if (cloneError != null) {
                    boot.details().put("clone_error", cloneError);
                }
            }
            progress.phase("setting credentials");
            long credentialsStart = System.nanoTime();
            try (Connection admin = adminConnection(id, image, boot.endpoint())) {
                if ("clone".equals(boot.details().get("create_path"))
                        && !"serial".equals(boot.details().get("clock_sync"))) {
                    // the clone's clock stood still since the template was saved; its random state is a copy
                    boot.details().put("clock_offset_ms", Long.toString(resyncGuest(admin, id)));
                    boot.details().put("clock_sync", "sql");
                }
                ensureTenant(admin, spec);
                setPasswordVerifier(admin, credentials.username(), credentials.password());
                rotateManagementSecret(admin, image, paths);
            }
            Map<String, String> details = new LinkedHashMap<>(boot.details());
            details.put("volume_copy_ms", Long.toString(volumeMs));
            details.put("credentials_ms", Long.toString((System.nanoTime() - credentialsStart) / 1_000_000));
            details.put("create_ms", Long.toString((System.nanoTime() - start) / 1_000_000));
            log.info("vm {} provisioned by {} in {} ms at {} ({})", id, details.get("create_path"),
                    details.get("create_ms"), boot.endpoint(), details);
            return new RunningInstance(id, boot.endpoint(), Instant.now(), details);
        } catch (RuntimeException | IOException | SQLException e) {
            log.warn("provisioning vm {} failed, removing what was created: {}", id, e.getMessage());
            try {
                destroy(id);
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            if (e instanceof PalisadeException pe) {
                throw pe;
            }
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "provisioning vm " + id + " failed: " + safeMessage(e), e);
        }
    }

    @Override
    public RunningInstance start(InstanceSpec spec, ProgressListener progress) {
        requireNonNull(spec, "spec is null");
        requireNonNull(progress, "progress is null");
        String id = spec.id();
        InstancePaths paths = paths(id);
        if (!Files.exists(paths.dataVolume())) {
            throw PalisadeException.notFound("vm instance " + id + " has no data volume on this host");
        }
        if (isRunning(id)) {
            NetworkPool.Slot slot = pool.find(id).orElseThrow(() -> new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "vm " + id + " is running but has no network slot; destroy it"));
            Endpoint endpoint = new Endpoint(slot.namespaceAddress(), VmNetwork.POSTGRES_PORT);
            return new RunningInstance(id, endpoint, Instant.now(), Map.of(
                    "accelerator", accelerator.kind().slug(), "pid", Long.toString(findPid(id).orElse(-1L))));
        }
        if (isSuspended(id)) {
            return resume(spec, progress);
        }
        GuestImage image = GuestImage.load(config.imageDir());
        Boot boot = bootWithRetries(spec, image, paths, progress);
        return new RunningInstance(id, boot.endpoint(), Instant.now(), boot.details());
    }

    @Override
    public void stop(String id) {
        requireNonNull(id, "id is null");
        moveAccess.closeRoutes(id);
        Optional<Long> pid = findPid(id);
        if (pid.isPresent()) {
            shutdown(id, pid.get());
        }
        processes.remove(id);
        network(id).teardown();
        config.cgroups().find(cgroupName(id)).ifPresent(Cgroups.Group::remove);
        deleteQuietly(paths(id).qmpSocket());
        deleteQuietly(paths(id).pidFile());
        if (!Files.exists(paths(id).stateFile())) {
            deleteQuietly(paths(id).memoryFile()); // a cold boot starts from a fresh one; a suspended VM keeps it
        }
    }

    @Override
    public void destroy(String id) {
        requireNonNull(id, "id is null");
        moveAccess.closeRoutes(id);
        Process starting = processes.get(id);
        if (starting != null && starting.isAlive()) {
            kill(id, starting.pid()); // still in the wrapper (sh, ip netns exec) that becomes QEMU
        }
        findPid(id).ifPresent(pid -> kill(id, pid));
        processes.remove(id);
        replicationChecked.remove(id);
        network(id).teardown();
        config.cgroups().find(cgroupName(id)).ifPresent(Cgroups.Group::remove);
        pool.release(id);
        deleteQuietly(migrationSocket(id));
        Path dir = paths(id).dir();
        if (Files.exists(dir)) {
            Processes.check(List.of("rm", "-rf", "--", dir.toString()), Duration.ofMinutes(2));
        }
        if (!isTemplate(id)) {
            users.remove(id);
        }
    }

    /**
     * The OS user a VM's QEMU drops to: one of its own for a tenant's VM (a QEMU escape reaches no other VM's files,
     * sockets or processes); palisade's service user for a template VM, which holds no tenant data.
     */
    ServiceUser qemuUser(String id) {
        return isTemplate(id) ? config.serviceUser() : users.forInstance(id);
    }

    TenantUsers tenantUsers() {
        return users;
    }

    private static boolean isTemplate(String id) {
        return id.startsWith(TEMPLATE_PREFIX);
    }

    // ---------------------------------------------------------------------------------- backups, restore, rename

    /**
     * The guest's PostgreSQL at its namespace's veth address, as the image's management role with this VM's current
     * management secret. Checks once per QEMU process (one management login) that the guest's rules admit the role to
     * replication connections; volumes from images built before that rule fail with CONFLICT saying so.
     */
    @Override
    public AdminAccess adminAccess(String id) {
        requireNonNull(id, "id is null");
        Optional<Long> pid = findPid(id);
        if (pid.isEmpty()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "vm " + id + " is not running"
                    + (isSuspended(id) ? " (suspended); resume it" : "; start it") + " before connecting to it for "
                    + "backups");
        }
        InstancePaths paths = paths(id);
        GuestImage image = GuestImage.load(config.imageDir());
        Endpoint endpoint = endpoint(id);
        try {
            if (!pid.get().equals(replicationChecked.get(id)) || Files.exists(paths.pendingManagementSecret())) {
                try (Connection admin = adminConnection(id, image, endpoint)) { // also confirms a pending rotation
                    GuestHba.requireReplicationRule(admin, image.adminRole(), id);
                }
                replicationChecked.put(id, pid.get());
            }
            String secret = Files.exists(paths.managementSecret())
                    ? readSecret(paths.managementSecret())
                    : image.adminSecret(); // never rotated (a provision interrupted before it could)
            return new AdminAccess(new AdminAccess.Tcp(endpoint), image.adminRole(), Optional.of(secret));
        } catch (SQLException | IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot reach the management role of vm " + id
                    + " at " + endpoint + ": " + safeMessage(e), e);
        }
    }

    @Override
    public boolean supportsRestore() {
        return true;
    }

    /** See {@link VmRestore}: volume from the directory, cold boot through recovery, management handover. */
    @Override
    public RunningInstance provisionFrom(InstanceSpec spec, TenantCredentials credentials, Path dataDirectory,
            ProgressListener progress) {
        return restore.provisionFrom(spec, credentials, dataDirectory, progress);
    }

    /** See {@link VmRename}; a suspended instance's saved state is discarded (the next start cold boots it). */
    @Override
    public void rename(String fromId, String toId) {
        renamer.rename(fromId, toId);
        replicationChecked.remove(fromId);
    }

    /** See {@link VmMoveAccess#tenantPlace}: the tenant's database and role as the guest's catalog names them. */
    @Override
    public TenantPlace tenantPlace(String id) {
        return moveAccess.tenantPlace(id);
    }

    /** See {@link VmMoveAccess#routeToHost}: a relay on the VM's veth link and a rule for its port, until closed. */
    @Override
    public HostRoute routeToHost(String id, Endpoint hostEndpoint) {
        return moveAccess.routeToHost(id, hostEndpoint);
    }

    /** Whether a QEMU of the instance exists, running or still starting (in its wrapper). */
    boolean hasProcess(String id) {
        Process starting = processes.get(id);
        return (starting != null && starting.isAlive()) || findPid(id).isPresent();
    }

    /** Drops what the driver remembers about an instance's processes (it has none any more). */
    void forget(String id) {
        processes.remove(id);
        replicationChecked.remove(id);
    }

    NetworkPool networkPool() {
        return pool;
    }

    @Override
    public void setPassword(String id, String username, String password) {
        requireNonNull(username, "username is null");
        requireNonNull(password, "password is null");
        if (!isRunning(id)) {
            throw new PalisadeException(
                    ErrorCode.CONFLICT, "vm " + id + " is not running; start it before changing a password");
        }
        Endpoint endpoint = endpoint(id);
        GuestImage image = GuestImage.load(config.imageDir());
        try (Connection admin = adminConnection(id, image, endpoint)) {
            setPasswordVerifier(admin, username, password);
        } catch (SQLException e) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "cannot set the password of '" + username + "' on vm " + id + ": "
                            + e.getMessage(), e);
        }
    }

    @Override
    public boolean isRunning(String id) {
        return findPid(id).isPresent();
    }

    @Override
    public Set<String> listInstances() {
        Set<String> ids = new TreeSet<>();
        try (var dirs = Files.list(config.instancesDir())) {
            dirs.filter(Files::isDirectory)
                    .map(p -> p.getFileName().toString())
                    .filter(name -> !name.startsWith("."))
                    .forEach(ids::add);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot list " + config.instancesDir(), e);
        }
        // networks and processes whose directory is gone (a crash in the middle of destroy)
        ids.addAll(pool.allocations().keySet());
        ids.addAll(qemuProcesses().keySet());
        ids.addAll(orphanNamespaces(ids));
        // a template snapshot being built is this driver's own work, not an orphan for the reconciler to remove (a
        // crashed build's leftovers are listed, and removed, once no build runs)
        ids.removeAll(templatesBuilding);
        return ids;
    }

    /**
     * Namespaces {@code pal-<id>} without a directory or slot here whose veth address lies in this driver's pool (another
     * driver on the same host, with its own pool, keeps its own).
     */
    private Set<String> orphanNamespaces(Set<String> known) {
        Set<String> result = new TreeSet<>();
        Path netns = Path.of("/run/netns");
        if (!Files.isDirectory(netns)) {
            return result;
        }
        try (var names = Files.list(netns)) {
            for (String name : names.map(p -> p.getFileName().toString()).toList()) {
                if (!name.startsWith(VmNetwork.NAMESPACE_PREFIX)) {
                    continue;
                }
                String id = name.substring(VmNetwork.NAMESPACE_PREFIX.length());
                if (known.contains(id)) {
                    continue;
                }
                Processes.Result addr = Processes.run(
                        List.of("ip", "-n", name, "-4", "-o", "addr", "show", "dev", VmNetwork.NS_VETH),
                        Duration.ofSeconds(5), null);
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("inet (\\d+\\.\\d+\\.\\d+\\.\\d+)/")
                        .matcher(addr.output());
                if (addr.ok() && m.find() && pool.cidr().contains(m.group(1))) {
                    result.add(id);
                }
            }
        } catch (IOException e) {
            log.debug("cannot list {}: {}", netns, e.getMessage());
        }
        return result;
    }

    @Override
    public InstanceStats stats(String id) {
        Optional<Long> pid = findPid(id);
        long disk = allocatedBytes(paths(id).dataVolume());
        if (pid.isEmpty()) {
            return new InstanceStats(false, -1, -1, -1, -1, disk);
        }
        long uptime = ProcessHandle.of(pid.get())
                .flatMap(h -> h.info().startInstant())
                .map(s -> Duration.between(s, Instant.now()).toSeconds())
                .orElse(-1L);
        long cpu = config.cgroups().find(cgroupName(id)).map(Cgroups.Group::cpuMillis).orElse(-1L);
        return new InstanceStats(true, pid.get(), uptime, cpu, Processes.rssBytes(pid.get()), disk);
    }

    /**
     * The PostgreSQL log of the instance (read over the management connection while it runs, from the stopped
     * volume with {@code debugfs} otherwise), falling back to the guest's serial console.
     */
    @Override
    public List<String> logTail(String id, int lines) {
        List<String> postgresLog = List.of();
        try {
            postgresLog = isRunning(id) ? postgresLogOverSql(id, lines) : postgresLogFromVolume(id, lines);
        } catch (RuntimeException e) {
            log.debug("cannot read the PostgreSQL log of vm {}: {}", id, e.getMessage());
        }
        if (!postgresLog.isEmpty()) {
            return postgresLog;
        }
        return Processes.tailFile(paths(id).serialLog(), lines);
    }

    /** The serial console of the instance's current (or last) boot. */
    public List<String> serialTail(String id, int lines) {
        return Processes.tailFile(paths(id).serialLog(), lines);
    }

    /** The QEMU pid of a running instance. */
    public Optional<Long> pid(String id) {
        return findPid(id);
    }

    /** Where the instance's PostgreSQL listens (its namespace's veth address), whether or not it runs. */
    public Endpoint endpoint(String id) {
        NetworkPool.Slot slot = pool.find(id).orElseThrow(
                () -> PalisadeException.notFound("vm instance " + id + " has no network slot on this host"));
        return new Endpoint(slot.namespaceAddress(), VmNetwork.POSTGRES_PORT);
    }

    /** The network names of an instance (they exist only while it runs). */
    public VmNetwork network(String id) {
        return VmNetwork.forId(id, guestAddress(), guestGateway());
    }

    public String cgroupName(String id) {
        return "vm-" + id;
    }

    /**
     * Opens a superuser connection to the guest as the management role. For platform work and tests only; the
     * connection never leaves the host and its secret is never logged.
     */
    public Connection managementConnection(String id) throws SQLException {
        return adminConnection(id, GuestImage.load(config.imageDir()), endpoint(id));
    }

    /** The data disk's current IO caps of a running instance ({@code iops-total}, {@code bps-total}, ...). */
    public Map<String, Long> ioLimits(String id) {
        try (Qmp qmp = Qmp.connect(paths(id).qmpSocket(), Duration.ofSeconds(5))) {
            var limits = qmp.execute("qom-get", Map.of("path", "/objects/tg0", "property", "limits"),
                    Duration.ofSeconds(5));
            Map<String, Long> result = new LinkedHashMap<>();
            limits.properties().forEach(e -> result.put(e.getKey(), e.getValue().asLong()));
            return result;
        }
    }

    /** Changes the data disk's IO caps of a running instance; 0 means unlimited. */
    public void setIoLimits(String id, int iops, long bytesPerSecond) {
        try (Qmp qmp = Qmp.connect(paths(id).qmpSocket(), Duration.ofSeconds(5))) {
            Map<String, Object> limits = new LinkedHashMap<>();
            limits.put("iops-total", (long) iops);
            limits.put("bps-total", bytesPerSecond);
            qmp.execute("qom-set", Map.of("path", "/objects/tg0", "property", "limits", "value", limits),
                    Duration.ofSeconds(5));
        }
    }

    @Override
    public void close() {
        moveAccess.closeAll(); // routes to the host live only as long as this driver
        processes.clear(); // VMs keep running; a new driver finds them through their pid files
    }

    // ------------------------------------------------------------------------------------------ suspend / resume

    @Override
    public boolean supportsSuspend() {
        return true;
    }

    /**
     * Pauses the guest, saves its device state next to its memory file (RAM already lives in that file; a clone whose
     * RAM is still a private mapping of its template saves the RAM into the state once), syncs memory file and volume,
     * and lets QEMU exit. The network namespace stays, so a resume skips it. The state is published (renamed into
     * place) only once complete and synced; if QEMU dies on the way nothing is published and a resume cold boots.
     */
    @Override
    public void suspend(String id) {
        requireNonNull(id, "id is null");
        InstancePaths paths = paths(id);
        Optional<Long> found = findPid(id);
        if (found.isEmpty()) {
            if (isSuspended(id)) {
                return;
            }
            throw new PalisadeException(ErrorCode.CONFLICT, "vm " + id + " is not running; nothing to suspend");
        }
        long pid = found.get();
        boolean ignoreShared = cmdline(pid).stream()
                .anyMatch(a -> a.contains("mem-path=" + paths.memoryFile() + ",share=on"));
        long start = System.nanoTime();
        long saveMs;
        try (Qmp qmp = Qmp.connect(paths.qmpSocket(), Duration.ofSeconds(5))) {
            saveMs = Migration.save(qmp, migrationSocket(id), qemuUser(id), paths.partialStateFile(), ignoreShared,
                    Duration.ofMinutes(2), () -> {});
            try {
                qmp.execute("quit", Map.of(), Duration.ofSeconds(5));
            } catch (PalisadeException e) {
                // QEMU may close the connection as it quits
            }
        } catch (RuntimeException e) {
            deleteQuietly(paths.partialStateFile());
            if (findPid(id).isPresent()) {
                // the save failed but QEMU lives: let the guest run on rather than leave the database down
                try (Qmp qmp = Qmp.connect(paths.qmpSocket(), Duration.ofSeconds(5))) {
                    qmp.execute("cont", Map.of(), Duration.ofSeconds(5));
                } catch (RuntimeException again) {
                    e.addSuppressed(again);
                }
            } else {
                reap(id);
            }
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "suspending vm " + id + " failed ("
                    + safeMessage(e) + "); it is "
                    + (isRunning(id) ? "still running" : "stopped; resume cold boots it"), e);
        }
        if (!Processes.awaitExit(pid, Duration.ofSeconds(10))) {
            kill(id, pid);
        }
        reap(id);
        try {
            // the memory file and the volume must reach the disk before the state that depends on them is published
            long syncStart = System.nanoTime();
            if (ignoreShared) {
                forceFile(paths.memoryFile());
            }
            forceFile(paths.dataVolume());
            long syncMs = (System.nanoTime() - syncStart) / 1_000_000;
            writePrivate(paths.stateModeFile(), ignoreShared ? "ignore-shared" : "full", true);
            Files.move(paths.partialStateFile(), paths.stateFile(), StandardCopyOption.REPLACE_EXISTING,
                    StandardCopyOption.ATOMIC_MOVE);
            if (!ignoreShared) {
                deleteQuietly(paths.memoryFile()); // the RAM is in the state; resume maps a fresh own file
            }
            log.info("vm {} suspended in {} ms (save {} ms, sync {} ms, state {} bytes, {})", id,
                    (System.nanoTime() - start) / 1_000_000, saveMs, syncMs, Files.size(paths.stateFile()),
                    ignoreShared ? "RAM in its memory file" : "RAM in the state");
        } catch (IOException e) {
            deleteQuietly(paths.partialStateFile());
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                    "suspending vm " + id + " failed while publishing its state; it is stopped and resume cold boots"
                            + " it", e);
        }
        deleteQuietly(paths.qmpSocket());
        deleteQuietly(paths.pidFile());
        config.cgroups().find(cgroupName(id)).ifPresent(Cgroups.Group::remove);
    }

    @Override
    public boolean isSuspended(String id) {
        return Files.exists(paths(id).stateFile()) && findPid(id).isEmpty();
    }

    /**
     * Continues a suspended instance from its saved state (taken first, so it is never resumed twice), resyncs the
     * guest clock and waits for PostgreSQL. Without a usable state (missing, corrupt, QEMU dying) it cold boots from
     * the volume, which PostgreSQL's crash recovery makes consistent. {@code details.resume_path} = restore|cold.
     */
    @Override
    public RunningInstance resume(InstanceSpec spec, ProgressListener progress) {
        requireNonNull(spec, "spec is null");
        requireNonNull(progress, "progress is null");
        String id = spec.id();
        InstancePaths paths = paths(id);
        if (!Files.exists(paths.dataVolume())) {
            throw PalisadeException.notFound("vm instance " + id + " has no data volume on this host");
        }
        if (isRunning(id)) {
            return start(spec, progress);
        }
        GuestImage image = GuestImage.load(config.imageDir());
        String failure = "no saved state";
        if (Files.exists(paths.stateFile())) {
            boolean ignoreShared = true;
            try {
                // at most once: the state is taken before QEMU sees it; a crash from here on means a cold boot
                Files.move(paths.stateFile(), paths.consumedStateFile(), StandardCopyOption.REPLACE_EXISTING,
                        StandardCopyOption.ATOMIC_MOVE);
                ignoreShared = !Files.exists(paths.stateModeFile())
                        || !"full".equals(Files.readString(paths.stateModeFile()).strip());
            } catch (IOException e) {
                failure = "cannot take the saved state: " + e.getMessage();
            }
            if (Files.exists(paths.consumedStateFile())) {
                try {
                    progress.phase("restoring the saved VM state");
                    long start = System.nanoTime();
                    Endpoint endpoint = ensureNetwork(id);
                    if (!ignoreShared) {
                        deleteQuietly(paths.memoryFile());
                        createPrivateFile(paths.memoryFile());
                    } else if (!Files.exists(paths.memoryFile())) {
                        throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the memory file is missing");
                    }
                    Map<String, String> details = restoreOnce(spec, image, paths, endpoint,
                            new QemuCommand.Memory(paths.memoryFile(), true), paths.consumedStateFile(), ignoreShared,
                            true);
                    if (!"serial".equals(details.get("clock_sync"))) {
                        try (Connection admin = adminConnection(id, image, endpoint)) {
                            details.put("clock_offset_ms", Long.toString(resyncGuest(admin, id)));
                            details.put("clock_sync", "sql");
                        }
                    }
                    details.put("resume_path", "restore");
                    details.put("resume_ms", Long.toString((System.nanoTime() - start) / 1_000_000));
                    log.info("vm {} resumed from its saved state in {} ms ({})", id, details.get("resume_ms"),
                            details);
                    return new RunningInstance(id, endpoint, Instant.now(), details);
                } catch (RuntimeException | SQLException e) {
                    failure = safeMessage(e);
                    abandonRestore(id);
                }
            }
        }
        log.warn("vm {}: cannot resume from a saved state ({}); cold booting from its volume", id, failure);
        Boot boot = bootWithRetries(spec, image, paths, progress);
        boot.details().put("resume_path", "cold");
        boot.details().put("resume_fallback_reason", failure);
        return new RunningInstance(id, boot.endpoint(), Instant.now(), boot.details());
    }

    /** The network of an instance: its slot, and its namespace created unless it is still there from a suspend. */
    private Endpoint ensureNetwork(String id) {
        NetworkPool.Slot slot = pool.allocate(id);
        VmNetwork network = network(id);
        if (!Files.exists(Path.of("/run/netns", network.namespace()))
                || !Files.exists(Path.of("/sys/class/net", network.hostVeth()))) {
            network.create(slot);
        }
        return new Endpoint(slot.namespaceAddress(), VmNetwork.POSTGRES_PORT);
    }

    /**
     * Starts QEMU waiting for a saved state, streams it in, deletes the state's file (a state is resumed at most once),
     * continues the guest and waits until PostgreSQL answers. Any failure kills that QEMU and throws.
     */
    private Map<String, String> restoreOnce(InstanceSpec spec, GuestImage image, InstancePaths paths,
            Endpoint endpoint, QemuCommand.Memory memory, Path state, boolean ignoreShared, boolean consume) {
        String id = spec.id();
        rotate(paths.serialLog(), paths.previousSerialLog());
        deleteQuietly(paths.incomingSocket());
        long spawn = System.nanoTime();
        Process process = startQemu(spec, image, paths, memory, paths.incomingSocket());
        long deadline = spawn + RESTORE_TIMEOUT.toNanos();
        Qmp qmp = null;
        try {
            while (qmp == null) {
                if (!process.isAlive()) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "QEMU exited with code "
                            + process.exitValue() + " before restoring; QEMU said: "
                            + Processes.tail(String.join("\n", Processes.tailFile(paths.qemuLog(), 5)), 3));
                }
                if (System.nanoTime() > deadline) {
                    throw new PalisadeException(ErrorCode.TIMEOUT, "QEMU's QMP socket did not answer");
                }
                if (Files.exists(paths.qmpSocket())) {
                    try {
                        qmp = Qmp.connect(paths.qmpSocket(), Duration.ofSeconds(5));
                        break;
                    } catch (PalisadeException e) {
                        // not listening yet
                    }
                }
                Processes.sleep(Duration.ofMillis(5));
            }
            long qmpNanos = System.nanoTime();
            long restoreMs = Migration.restore(qmp, paths.incomingSocket(), state, ignoreShared, RESTORE_TIMEOUT);
            if (consume) {
                deleteQuietly(state); // a suspended instance's own state: resumed at most once
                deleteQuietly(paths.stateModeFile());
            }
            qmp.execute("cont", Map.of(), Duration.ofSeconds(5));
            long contNanos = System.nanoTime();
            qmp.close();
            qmp = null;
            // the clock resync (guest helper) and PostgreSQL's first answer overlap
            java.util.concurrent.CompletableFuture<Boolean> clock = new java.util.concurrent.CompletableFuture<>();
            Thread.ofVirtual().name("vm-resync-" + id).start(() -> clock.complete(resyncOverSerial(paths)));
            while (!PgProbe.isReady(endpoint, PROBE_TIMEOUT)) {
                if (!process.isAlive()) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                            "QEMU exited after the restore with code " + process.exitValue());
                }
                if (System.nanoTime() > deadline) {
                    throw new PalisadeException(ErrorCode.TIMEOUT, "PostgreSQL did not answer after the restore");
                }
                Processes.sleep(Duration.ofMillis(5));
            }
            long ready = System.nanoTime();
            boolean clockSynced = clock.join(); // bounded by SERIAL_ACK_TIMEOUT
            Map<String, String> details = new LinkedHashMap<>();
            details.put("accelerator", accelerator.kind().slug());
            details.put("pid", Long.toString(process.pid()));
            details.put("vcpus", Integer.toString(spec.plan().cpu()));
            details.put("memory_mb", Integer.toString(spec.plan().memoryMb()));
            details.put("restore_qmp_ms", Long.toString((qmpNanos - spawn) / 1_000_000));
            details.put("restore_state_ms", Long.toString(restoreMs));
            details.put("restore_cont_ms", Long.toString((contNanos - spawn) / 1_000_000));
            details.put("restore_pg_answers_ms", Long.toString((ready - spawn) / 1_000_000));
            details.put("clock_sync", clockSynced ? "serial" : "pending");
            details.put("netns", network(id).namespace());
            details.put("endpoint", endpoint.toString());
            return details;
        } catch (RuntimeException e) {
            if (qmp != null) {
                qmp.close();
            }
            abandonRestore(id);
            throw e;
        }
    }

    /** Kills a QEMU that was restoring or booting for the instance and removes its pid file and cgroup. */
    void abandonRestore(String id) {
        Process process = processes.get(id);
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
        }
        findPid(id).ifPresent(pid -> kill(id, pid));
        reap(id);
        cleanupAfterFailedBoot(id);
        deleteQuietly(paths(id).consumedStateFile());
        deleteQuietly(paths(id).incomingSocket());
    }

    private void reap(String id) {
        Process process = processes.remove(id);
        if (process != null) {
            try {
                process.waitFor(KILL_WAIT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * After a restore, over the guest's control port (virtio-serial, a unix socket here): {@code tsync K0} makes the
     * root helper set the clock to the nearest host second at once, mix virtio-rng bytes into the kernel pool and
     * answer {@code ok <L>} (L = centiseconds its {@code date} took); then, in the background, {@code tset K1} is sent
     * L before the host's clock reads the next whole second K1, which puts the guest within tens of ms. True once the
     * coarse step was acknowledged (within {@link #SERIAL_ACK_TIMEOUT}); false for an image without the helper, then
     * the caller resyncs over SQL.
     */
    private boolean resyncOverSerial(InstancePaths paths) {
        java.nio.channels.SocketChannel channel = null;
        try {
            channel = java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX);
            channel.connect(java.net.UnixDomainSocketAddress.of(paths.controlSocket()));
            long k0 = Math.round((System.currentTimeMillis() + 20) / 1000.0);
            writeLine(channel, "tsync " + k0);
            channel.configureBlocking(false);
            java.nio.ByteBuffer answer = java.nio.ByteBuffer.allocate(256);
            long deadline = System.nanoTime() + SERIAL_ACK_TIMEOUT.toNanos();
            java.util.regex.Pattern ok = java.util.regex.Pattern.compile("ok (\\d+)\\s");
            while (System.nanoTime() < deadline) {
                if (channel.read(answer) < 0) {
                    break;
                }
                java.util.regex.Matcher m =
                        ok.matcher(new String(answer.array(), 0, answer.position(), StandardCharsets.US_ASCII));
                if (m.find()) {
                    long lagMs = Math.min(500, Long.parseLong(m.group(1)) * 10);
                    java.nio.channels.SocketChannel line = channel;
                    channel = null; // the exact step owns it now
                    Thread.ofVirtual().name("vm-clock-" + paths.dir().getFileName())
                            .start(() -> exactStep(line, lagMs));
                    return true;
                }
                Processes.sleep(Duration.ofMillis(2));
            }
            return false;
        } catch (IOException | RuntimeException e) {
            log.debug("no control line to the guest at {}: {}", paths.controlSocket(), e.getMessage());
            return false;
        } finally {
            closeQuietly(channel);
        }
    }

    /** Sends {@code tset K1} {@code lagMs} before the host clock reads the whole second K1 (at least 100 ms away). */
    private static void exactStep(java.nio.channels.SocketChannel channel, long lagMs) {
        try {
            long now = System.currentTimeMillis();
            long k1 = (now + lagMs + 100) / 1000 + 1;
            Thread.sleep(Math.max(0, k1 * 1000 - lagMs - now));
            channel.configureBlocking(true);
            writeLine(channel, "tset " + k1);
        } catch (IOException | InterruptedException e) {
            // the VM went away (suspended or stopped) meanwhile: nothing to correct
        } finally {
            closeQuietly(channel);
        }
    }

    private static void closeQuietly(java.nio.channels.SocketChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // already gone
            }
        }
    }

    private static void writeLine(java.nio.channels.SocketChannel channel, String line) throws IOException {
        java.nio.ByteBuffer bytes = java.nio.ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.US_ASCII));
        while (bytes.hasRemaining()) {
            channel.write(bytes);
        }
    }

    /**
     * After a restore: asks the guest's root (through the image's resync FIFO, written by the superuser with COPY TO
     * PROGRAM) to set the system clock from the RTC and mix virtio-rng bytes into the kernel pool, then waits until
     * the guest clock is within a second of the host's. Returns the remaining offset in ms (guest minus host).
     */
    private long resyncGuest(Connection admin, String id) throws SQLException {
        // fallback path (see resyncOverSerial)
        try (Statement s = admin.createStatement()) {
            s.execute("SET statement_timeout = '5s'");
            try {
                long k0 = Math.round((System.currentTimeMillis() + 30) / 1000.0);
                s.execute("COPY (SELECT 1) TO PROGRAM 'echo sync " + k0 + " > /run/palisade-resync'");
            } catch (SQLException | NumberFormatException e) {
                log.warn("vm {}: the guest has no clock resync hook (rebuild the image with guest/build.sh): {}", id,
                        e.getMessage());
            }
            long deadline = System.nanoTime() + CLOCK_SYNC_TIMEOUT.toNanos();
            long offset;
            while (true) {
                long before = System.currentTimeMillis();
                try (ResultSet rs = s.executeQuery("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8")) {
                    rs.next();
                    long after = System.currentTimeMillis();
                    offset = rs.getLong(1) - (before + after) / 2;
                }
                if (Math.abs(offset) < 1000 || System.nanoTime() > deadline) {
                    break;
                }
                Processes.sleep(Duration.ofMillis(20));
            }
            s.execute("RESET statement_timeout");
            if (Math.abs(offset) >= 1000) {
                log.warn("vm {}: guest clock still {} ms off the host after the resync", id, offset);
            }
            return offset;
        }
    }

    // ----------------------------------------------------------------------------------------- template snapshots

    /** A saved template VM: memory file, device state, and the data volume taken at the same instant. Immutable. */
    record Template(Path dir) {
        Path memory() {
            return dir.resolve("memory.ram");
        }

        Path state() {
            return dir.resolve("state");
        }

        Path volume() {
            return dir.resolve("data.ext4");
        }
    }

    /** The cache key of a template: everything that must match between the saved VM and its clones. */
    String templateKey(InstanceSpec spec, GuestImage image) {
        // a QEMU upgrade may change the migration format: its binary is part of the key
        String qemu;
        try {
            qemu = Long.toString(Files.size(config.qemuBinary()), 36)
                    + Long.toString(Files.getLastModifiedTime(config.qemuBinary()).toMillis() / 1000, 36);
        } catch (IOException e) {
            qemu = "unknown";
        }
        return image.key() + "-pg" + spec.version().major() + "-c" + spec.plan().cpu() + "-m" + spec.plan().memoryMb()
                + "-d" + spec.plan().diskMb() + "-" + accelerator.kind().slug() + "-t" + tscKhz + "-q"
                + sha256Hex(qemu).substring(0, 8);
    }

    /** The templates directory of this driver. */
    public Path templatesDir() {
        return templatesDir;
    }

    /**
     * The template snapshot for the spec's version and plan, built on first need (a cold boot plus a save, serialised
     * per key); empty when it cannot be built (then creates cold boot, and the reason is logged once).
     */
    Optional<Template> template(InstanceSpec spec, GuestImage image, ProgressListener progress) {
        String key = templateKey(spec, image);
        Template template = new Template(templatesDir.resolve(key));
        if (Files.exists(template.dir().resolve("complete"))) {
            return Optional.of(template);
        }
        if (failedTemplates.containsKey(key)) {
            return Optional.empty();
        }
        synchronized (templateLocks.computeIfAbsent(key, k -> new Object())) {
            if (Files.exists(template.dir().resolve("complete"))) {
                return Optional.of(template);
            }
            try {
                progress.phase("building the template snapshot " + key + " (once per image and plan)");
                buildTemplate(spec, image, key, template);
                return Optional.of(template);
            } catch (RuntimeException | IOException | SQLException e) {
                failedTemplates.put(key, safeMessage(e));
                log.warn("cannot build the template snapshot {} ({}); creates of this plan cold boot", key,
                        safeMessage(e));
                return Optional.empty();
            }
        }
    }

    /** Ids of the template VMs being built now (hidden from {@link #listInstances}). */
    private final Set<String> templatesBuilding = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** A template that failed {@value #MAX_CLONE_FAILURES} clones in a row is deleted; the next create rebuilds it. */
    private void discardTemplateAfterRepeatedFailures(Template template) {
        String key = template.dir().getFileName().toString();
        if (cloneFailures.merge(key, 1, Integer::sum) < MAX_CLONE_FAILURES) {
            return;
        }
        synchronized (templateLocks.computeIfAbsent(key, k -> new Object())) {
            log.warn("template snapshot {} failed {} clones in a row; deleting it (the next create rebuilds it)", key,
                    MAX_CLONE_FAILURES);
            cloneFailures.remove(key);
            // clones map the memory file privately: running ones keep their mapping, the directory can go
            Processes.run(List.of("rm", "-rf", "--", template.dir().toString()), Duration.ofMinutes(1), null);
        }
    }

    private void buildTemplate(InstanceSpec spec, GuestImage image, String key, Template template)
            throws IOException, SQLException {
        long start = System.nanoTime();
        String id = TEMPLATE_PREFIX + sha256Hex(templatesDir + "/" + key).substring(0, 16);
        templatesBuilding.add(id);
        try {
            buildTemplate(spec, image, key, template, id, start);
        } finally {
            templatesBuilding.remove(id);
        }
    }

    private void buildTemplate(InstanceSpec spec, GuestImage image, String key, Template template, String id,
            long start) throws IOException, SQLException {
        InstanceSpec templateSpec = new InstanceSpec(id, spec.version(), spec.plan(), "app", "app");
        InstancePaths paths = paths(id);
        destroy(id); // a leftover of a crashed build
        Path building = templatesDir.resolve(key + ".building");
        try {
            Files.createDirectories(paths.dir());
            Files.setPosixFilePermissions(paths.dir(), PosixFilePermissions.fromString("rwx------"));
            createVolume(image.templateVolume(spec.version()), paths.dataVolume(), spec.plan().diskMb());
            Boot boot = bootWithRetries(templateSpec, image, paths, ProgressListener.NONE);
            // the volume must match the memory: checkpoint and flush everything before the guest is stopped
            try (Connection admin = adminConnection(id, image, boot.endpoint());
                    Statement s = admin.createStatement()) {
                s.execute("CHECKPOINT");
                s.execute("COPY (SELECT 1) TO PROGRAM 'sync'");
            }
            Processes.sleep(Duration.ofMillis(300)); // the management backend exits: clones start with no client
            long pid = findPid(id).orElseThrow(
                    () -> new PalisadeException(ErrorCode.DRIVER_FAILURE, "the template VM exited"));
            try (Qmp qmp = Qmp.connect(paths.qmpSocket(), Duration.ofSeconds(5))) {
                Migration.save(qmp, migrationSocket(id), qemuUser(id), paths.partialStateFile(), true, Duration.ofMinutes(1),
                        () -> {});
                try {
                    qmp.execute("quit", Map.of(), Duration.ofSeconds(5));
                } catch (PalisadeException e) {
                    // closed as it quits
                }
            }
            if (!Processes.awaitExit(pid, Duration.ofSeconds(10))) {
                kill(id, pid);
            }
            reap(id);
            Processes.check(List.of("rm", "-rf", "--", building.toString()), Duration.ofMinutes(1));
            Files.createDirectories(building);
            Files.setPosixFilePermissions(building, PosixFilePermissions.fromString("rwx------"));
            Files.move(paths.memoryFile(), building.resolve("memory.ram"));
            Files.move(paths.dataVolume(), building.resolve("data.ext4"));
            Files.move(paths.partialStateFile(), building.resolve("state"));
            for (String name : List.of("memory.ram", "data.ext4", "state")) {
                forceFile(building.resolve(name));
            }
            writePrivate(building.resolve("complete"), key + "\n", true);
            Files.createDirectories(templatesDir);
            Processes.check(List.of("rm", "-rf", "--", template.dir().toString()), Duration.ofMinutes(1));
            Files.move(building, template.dir(), StandardCopyOption.ATOMIC_MOVE);
            log.info("template snapshot {} built in {} ms ({} bytes of RAM on disk)", key,
                    (System.nanoTime() - start) / 1_000_000, allocatedBytes(template.memory()));
        } finally {
            destroy(id);
            Processes.run(List.of("rm", "-rf", "--", building.toString()), Duration.ofMinutes(1), null);
        }
    }

    /** Restores a clone of a template: its RAM a private copy-on-write mapping of the template's memory file. */
    private Boot restoreClone(InstanceSpec spec, GuestImage image, InstancePaths paths, Template template) {
        String id = spec.id();
        long networkStart = System.nanoTime();
        Endpoint endpoint = ensureNetwork(id);
        long networkMs = (System.nanoTime() - networkStart) / 1_000_000;
        Map<String, String> details = restoreOnce(spec, image, paths, endpoint,
                new QemuCommand.Memory(template.memory(), false), template.state(), true, false);
        details.put("create_path", "clone");
        details.put("template", template.dir().getFileName().toString());
        details.put("network_ms", Long.toString(networkMs));
        return new Boot(endpoint, details);
    }

    // ------------------------------------------------------------------------------------------------ files

    private Path migrationDir() {
        return config.instancesDir().resolve(".mig");
    }

    Path migrationSocket(String id) {
        return migrationDir().resolve(id + ".sock");
    }

    static void discardSavedState(InstancePaths paths) {
        deleteQuietly(paths.stateFile());
        deleteQuietly(paths.partialStateFile());
        deleteQuietly(paths.consumedStateFile());
        deleteQuietly(paths.stateModeFile());
    }

    private static void createPrivateFile(Path file) {
        try {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot create " + file + ": " + e.getMessage(), e);
        }
    }

    private static void forceFile(Path file) throws IOException {
        try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(file,
                StandardOpenOption.WRITE)) {
            channel.force(true);
        }
    }

    private static void copySparse(Path from, Path to) throws IOException {
        Processes.check(List.of("cp", "--sparse=always", "--reflink=auto", from.toString(), to.toString()),
                Duration.ofMinutes(5));
        Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rw-------"));
    }

    private static String sha256Hex(String text) {
        try {
            byte[] digest = java.security.MessageDigest.getInstance("SHA-256")
                    .digest(text.getBytes(StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(digest);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------------------------------------------------- boot

    record Boot(Endpoint endpoint, Map<String, String> details) {}

    private Boot bootWithRetries(InstanceSpec spec, GuestImage image, InstancePaths paths, ProgressListener progress) {
        return bootWithRetries(spec, image, paths, progress, false);
    }

    /**
     * The first boot of a volume made from a restored data directory (see {@link VmRestore}): cold, with the bound
     * {@code vm.restore-timeout}; ready only once the guest says {@code ready} (recovery ended, promoted); a postmaster
     * that exits, a recovery that stops touching the disk for {@link #RECOVERY_STALL}, or the bound passing fail at
     * once (no watchdog retry: the next attempt would replay the same WAL). Early hangs (no first marker) are retried.
     */
    Boot bootForRestore(InstanceSpec spec, GuestImage image, InstancePaths paths, ProgressListener progress) {
        return bootWithRetries(spec, image, paths, progress, true);
    }

    private Boot bootWithRetries(InstanceSpec spec, GuestImage image, InstancePaths paths, ProgressListener progress,
            boolean recovery) {
        String id = spec.id();
        NetworkPool.Slot slot = pool.allocate(id);
        Endpoint endpoint = new Endpoint(slot.namespaceAddress(), VmNetwork.POSTGRES_PORT);
        VmNetwork network = network(id);
        progress.phase("creating the network namespace " + network.namespace());
        long networkStart = System.nanoTime();
        network.create(slot);
        long networkMs = (System.nanoTime() - networkStart) / 1_000_000;
        int retries = 0;
        List<String> failures = new ArrayList<>();
        while (true) {
            progress.phase("booting the microVM (" + accelerator.kind().slug()
                    + (retries > 0 ? ", watchdog retry " + retries : "") + ")");
            try {
                Map<String, String> details = bootOnce(spec, image, paths, endpoint, recovery ? progress : null);
                details.put("watchdog_retries", Integer.toString(retries));
                details.put("network_ms", Long.toString(networkMs));
                details.put("netns", network.namespace());
                details.put("endpoint", endpoint.toString());
                return new Boot(endpoint, details);
            } catch (BootHang hang) {
                failures.add(hang.getMessage());
                if (retries >= config.maxBootRetries()) {
                    throw new PalisadeException(
                            ErrorCode.DRIVER_FAILURE,
                            "vm " + id + " did not boot after " + (retries + 1) + " attempts ("
                                    + accelerator.kind().slug() + "): " + String.join(" / ", failures) + "; see "
                                    + paths.serialLog());
                }
                retries++;
                watchdogRetries.incrementAndGet();
                log.warn("boot watchdog: vm {} attempt {} failed ({}); killing and retrying ({} of {})", id, retries,
                        hang.getMessage(), retries, config.maxBootRetries());
            }
        }
    }

    /** A boot that hung or whose guest died; worth retrying. */
    private static final class BootHang extends RuntimeException {
        BootHang(String message) {
            super(message, null, false, false);
        }
    }

    /** Starts QEMU for an instance (cgroup joined, in its namespace, own session) and records its pid. */
    private Process startQemu(InstanceSpec spec, GuestImage image, InstancePaths paths, QemuCommand.Memory memory,
            Path incomingSocket) {
        String id = spec.id();
        deleteQuietly(paths.qmpSocket());
        QemuCommand qemu = new QemuCommand(
                config.qemuBinary(),
                accelerator,
                image,
                spec.plan(),
                paths.dataVolume(),
                paths,
                VmNetwork.namespaceName(id),
                tscKhz,
                config.serviceUser().dropsPrivileges() ? qemuUser(id).name() : null,
                memory,
                incomingSocket);
        long overheadMb = accelerator.kind() == Accelerator.Kind.TCG ? 256 : 128;
        Optional<Cgroups.Group> group = config.cgroups()
                .create(cgroupName(id), spec.plan().cpu(), (spec.plan().memoryMb() + overheadMb) * MIB);
        // its own session: a Ctrl-C or SIGHUP meant for palisade's process group must not take the VMs down
        List<String> command = new ArrayList<>(List.of("setsid"));
        if (group.isPresent()) {
            command.addAll(List.of("sh", "-c", group.get().joinShellCommand() + " && exec \"$@\"", "sh"));
        }
        command.addAll(network(id).execPrefix());
        command.addAll(qemu.arguments());
        Process process;
        try {
            process = Processes.builder(command)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(paths.qemuLog().toFile()))
                    .start();
            writePrivate(paths.pidFile(), Long.toString(process.pid()), false);
        } catch (IOException e) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "cannot start QEMU for vm " + id + ": " + e.getMessage(), e);
        }
        processes.put(id, process);
        return process;
    }

    /**
     * One boot attempt. {@code recovery} (a progress listener) marks the first boot of a restored data directory: see
     * {@link #bootForRestore}; null for ordinary boots.
     */
    private Map<String, String> bootOnce(InstanceSpec spec, GuestImage image, InstancePaths paths, Endpoint endpoint,
            ProgressListener recovery) {
        String id = spec.id();
        rotate(paths.serialLog(), paths.previousSerialLog());
        // a cold boot changes the volume: any saved state no longer matches it and must never be resumed
        discardSavedState(paths);
        deleteQuietly(paths.memoryFile());
        createPrivateFile(paths.memoryFile());
        long spawn = System.nanoTime();
        Process process = startQemu(spec, image, paths, new QemuCommand.Memory(paths.memoryFile(), true), null);
        SerialConsole serial = new SerialConsole(paths.serialLog(), spawn);
        long deadline = spawn + config.bootTimeout().toNanos();
        // once PostgreSQL runs on a restored directory, its recovery gets the longer bound
        Duration recoveryBound = config.restoreTimeout().compareTo(config.bootTimeout()) < 0
                ? config.bootTimeout()
                : config.restoreTimeout();
        RecoveryWatch watch = recovery == null ? null : new RecoveryWatch(paths.qmpSocket(), RECOVERY_STALL, spawn);
        long nextProgress = spawn + RECOVERY_PROGRESS_INTERVAL.toNanos();
        // the early-boot hang (timer calibration) shows as no initramfs marker; catch it well before the overall bound
        long firstMarkerDeadline = spawn + Math.min(config.bootTimeout().toNanos() / 2, FIRST_MARKER_TIMEOUT.toNanos());
        long readyNanos;
        while (true) {
            serial.poll();
            if (!process.isAlive()) {
                serial.poll();
                String why = "QEMU exited with code " + process.exitValue() + "; QEMU said: "
                        + Processes.tail(String.join("\n", Processes.tailFile(paths.qemuLog(), 5)), 3)
                        + "; guest console: " + serial.tail(5);
                cleanupAfterFailedBoot(id);
                if (!serial.seenAny()) {
                    // QEMU refused to start (bad arguments, missing file): retrying will not help
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "vm " + id + ": " + why);
                }
                if (recovery != null && serial.seen("postgres-started")) {
                    // e.g. FATAL: recovery ended before the configured recovery target was reached
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "PostgreSQL exited during recovery ("
                            + (serial.seen("postgres-exited") ? "the guest powered off" : why) + ")");
                }
                throw new BootHang(why);
            }
            long now = System.nanoTime();
            boolean recovering = recovery != null && serial.seen("postgres-started");
            if (recovering && !serial.seen("ready")) {
                if (watch.poll(now) && watch.stalled(now)) {
                    killForRetry(id, process);
                    throw new PalisadeException(ErrorCode.TIMEOUT, "recovery made no progress: no I/O on the data "
                            + "volume for " + watch.stallBound().toMinutes() + " min (" + watch.describe() + ")");
                }
                if (now > nextProgress) {
                    nextProgress = now + RECOVERY_PROGRESS_INTERVAL.toNanos();
                    recovery.phase("recovering: " + watch.describe() + " after "
                            + Duration.ofNanos(now - spawn).toSeconds() + " s");
                }
            }
            if (recovering && now > spawn + recoveryBound.toNanos()) {
                killForRetry(id, process);
                throw new PalisadeException(ErrorCode.TIMEOUT, "PostgreSQL did not finish recovery within "
                        + recoveryBound.toMinutes() + " min (vm.restore-timeout; phases " + serial.phases() + ", "
                        + watch.describe() + ")");
            }
            if (!serial.seen("initramfs") && now > firstMarkerDeadline) {
                killForRetry(id, process);
                throw new BootHang("no '" + SerialConsole.MARKER + "initramfs' within "
                        + Duration.ofNanos(firstMarkerDeadline - spawn).toSeconds() + " s; console: " + serial.tail(3));
            }
            if (!recovering && now > deadline) {
                killForRetry(id, process);
                throw new BootHang("PostgreSQL not ready within " + config.bootTimeout().toSeconds() + " s (phases "
                        + serial.phases() + "); console: " + serial.tail(3));
            }
            // after a restore only "ready" counts: during recovery (hot_standby off) probes would only load the guest
            boolean probe = recovery == null ? serial.seen("ready") || serial.seen("postgres-started")
                    : serial.seen("ready");
            if (probe && PgProbe.isReady(endpoint, PROBE_TIMEOUT)) {
                readyNanos = System.nanoTime();
                break;
            }
            Processes.sleep(Duration.ofMillis(25));
        }
        serial.poll();
        Map<String, String> details = new LinkedHashMap<>();
        details.put("accelerator", accelerator.kind().slug());
        details.put("pid", Long.toString(process.pid()));
        details.put("vcpus", Integer.toString(spec.plan().cpu()));
        details.put("memory_mb", Integer.toString(spec.plan().memoryMb()));
        Map<String, Long> phases = serial.phases();
        for (String phase : SerialConsole.PHASES) {
            if (phases.containsKey(phase)) {
                details.put("boot_" + phase.replace('-', '_') + "_ms", Long.toString(phases.get(phase)));
            }
        }
        details.put("boot_pg_answers_ms", Long.toString((readyNanos - spawn) / 1_000_000));
        if (watch != null) {
            watch.poll(Long.MAX_VALUE);
            details.put("recovery_read_bytes", Long.toString(watch.readBytes()));
            details.put("recovery_written_bytes", Long.toString(watch.writtenBytes()));
        }
        log.info("vm {} booted ({}): {}", id, accelerator.kind().slug(), details);
        return details;
    }

    private void killForRetry(String id, Process process) {
        process.destroyForcibly();
        try {
            process.waitFor(KILL_WAIT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        cleanupAfterFailedBoot(id);
    }

    private void cleanupAfterFailedBoot(String id) {
        processes.remove(id);
        deleteQuietly(paths(id).pidFile());
        config.cgroups().find(cgroupName(id)).ifPresent(Cgroups.Group::remove);
    }

    // ------------------------------------------------------------------------------------------------- shutdown

    /** Clean guest shutdown (PostgreSQL fast shutdown, file systems synced), bounded, then QMP quit, then SIGKILL. */
    private void shutdown(String id, long pid) {
        InstancePaths paths = paths(id);
        long start = System.nanoTime();
        try (Qmp qmp = Qmp.connect(paths.qmpSocket(), Duration.ofSeconds(5))) {
            qmp.execute("system_powerdown", Map.of(), Duration.ofSeconds(5));
            if (Processes.awaitExit(pid, config.stopTimeout())) {
                log.info("vm {} shut down cleanly in {} ms", id, (System.nanoTime() - start) / 1_000_000);
                return;
            }
            log.warn("vm {} did not power off within {} s; telling QEMU to quit", id, config.stopTimeout().toSeconds());
            qmp.execute("quit", Map.of(), Duration.ofSeconds(5));
        } catch (PalisadeException e) {
            log.warn("vm {}: QMP shutdown failed ({}); killing QEMU", id, e.getMessage());
        }
        if (!Processes.awaitExit(pid, Duration.ofSeconds(5))) {
            kill(id, pid);
        }
    }

    private void kill(String id, long pid) {
        Processes.signal(pid, "KILL");
        if (!Processes.awaitExit(pid, KILL_WAIT)) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "QEMU of vm " + id + " (pid " + pid + ") survived SIGKILL for "
                            + KILL_WAIT.toSeconds() + " s");
        }
        Process process = processes.remove(id);
        if (process != null) {
            try {
                process.waitFor(KILL_WAIT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ processes

    /** The live QEMU of an instance: from its pid file if that still names our QEMU, else from the process table. */
    private Optional<Long> findPid(String id) {
        Path pidFile = paths(id).pidFile();
        if (Files.exists(pidFile)) {
            try {
                long pid = Long.parseLong(SafeFiles.readSmall(pidFile, 64).orElse(""));
                if (isOurQemu(pid, id) && !Processes.isZombie(pid)) {
                    return Optional.of(pid);
                }
            } catch (PalisadeException | NumberFormatException e) {
                // fall back to the process table
            }
        }
        Long pid = qemuProcesses().get(id);
        return pid == null || Processes.isZombie(pid) ? Optional.empty() : Optional.of(pid);
    }

    /** QEMU processes whose command line names a VM of this driver's instances dir, by id. */
    Map<String, Long> qemuProcesses() {
        Map<String, Long> result = new LinkedHashMap<>();
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path proc : procs.toList()) {
                String name = proc.getFileName().toString();
                if (!name.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                List<String> args = cmdline(Long.parseLong(name));
                int at = args.indexOf("-name");
                if (at < 0 || at + 1 >= args.size() || !args.getFirst().contains("qemu")) {
                    continue;
                }
                String vmName = args.get(at + 1);
                if (!vmName.startsWith(VmNetwork.NAMESPACE_PREFIX)) {
                    continue;
                }
                String id = vmName.substring(VmNetwork.NAMESPACE_PREFIX.length());
                String prefix = config.instancesDir().resolve(id) + "/";
                if (args.stream().anyMatch(a -> a.contains(prefix))) {
                    result.put(id, Long.parseLong(name));
                }
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot list /proc", e);
        }
        return result;
    }

    private boolean isOurQemu(long pid, String id) {
        List<String> args = cmdline(pid);
        int at = args.indexOf("-name");
        return at >= 0 && at + 1 < args.size() && args.get(at + 1).equals(VmNetwork.namespaceName(id))
                && args.getFirst().contains("qemu");
    }

    private static List<String> cmdline(long pid) {
        try {
            byte[] bytes = Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline"));
            if (bytes.length == 0) {
                return List.of();
            }
            return List.of(new String(bytes, StandardCharsets.UTF_8).split("\0"));
        } catch (IOException e) {
            return List.of();
        }
    }

    private static long allocatedBytes(Path file) {
        if (!Files.exists(file)) {
            return -1;
        }
        Processes.Result result =
                Processes.run(List.of("stat", "-c", "%b %B", file.toString()), Duration.ofSeconds(5), null);
        if (!result.ok()) {
            return -1;
        }
        String[] parts = result.output().strip().split(" ");
        return Long.parseLong(parts[0]) * Long.parseLong(parts[1]);
    }

    // -------------------------------------------------------------------------------------------------- volumes

    private void createVolume(Path template, Path volume, int diskMb) throws IOException {
        Processes.check(
                List.of("cp", "--sparse=always", "--reflink=auto", template.toString(), volume.toString()),
                Duration.ofMinutes(5));
        Files.setPosixFilePermissions(volume, PosixFilePermissions.fromString("rw-------"));
        long wanted = diskMb * MIB;
        long size = Files.size(volume);
        if (wanted > size) {
            // grow the image and its file system before the first boot (offline resize; the guest sees the new size)
            Processes.check(
                    List.of("truncate", "-s", Long.toString(wanted), volume.toString()), Duration.ofSeconds(30));
            Processes.Result resize =
                    Processes.run(List.of("resize2fs", volume.toString()), Duration.ofMinutes(2), null);
            if (!resize.ok()) {
                Processes.run(List.of("e2fsck", "-f", "-p", volume.toString()), Duration.ofMinutes(2), null);
                Processes.check(List.of("resize2fs", volume.toString()), Duration.ofMinutes(2));
            }
        } else if (wanted < size) {
            log.info("plan disk {} MiB is smaller than the template volume ({} MiB); keeping the template size", diskMb,
                    size / MIB);
        }
    }

    // ----------------------------------------------------------------------------------------------- management

    Connection adminConnection(String id, GuestImage image, Endpoint endpoint) throws SQLException {
        InstancePaths paths = paths(id);
        List<Path> candidates = new ArrayList<>();
        if (Files.exists(paths.managementSecret())) {
            candidates.add(paths.managementSecret());
        }
        if (Files.exists(paths.pendingManagementSecret())) {
            candidates.add(paths.pendingManagementSecret());
        }
        if (candidates.isEmpty()) {
            candidates.add(image.adminSecretFile()); // never rotated yet
        }
        SQLException last = null;
        for (Path candidate : candidates) {
            try {
                Connection connection = connect(endpoint, image.adminRole(), readSecret(candidate));
                if (candidate.equals(paths.pendingManagementSecret())) {
                    // the rotation reached the guest but the driver stopped before confirming it
                    Files.move(candidate, paths.managementSecret(), StandardCopyOption.REPLACE_EXISTING,
                            StandardCopyOption.ATOMIC_MOVE);
                }
                return connection;
            } catch (SQLException e) {
                last = e;
                if (!"28P01".equals(e.getSQLState())) {
                    throw e;
                }
            } catch (IOException e) {
                throw new PalisadeException(
                        ErrorCode.DRIVER_FAILURE, "cannot read the management secret of vm " + id, e);
            }
        }
        throw last;
    }

    static Connection connect(Endpoint endpoint, String user, String password) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", user);
        if (password != null) { // null: a trust rule is expected (first boot of a restored directory, see VmRestore)
            properties.setProperty("password", password);
        }
        properties.setProperty("sslmode", "disable"); // host <-> the VM's own namespace, never leaves the machine
        properties.setProperty("connectTimeout", "10");
        properties.setProperty("socketTimeout", "120");
        properties.setProperty("ApplicationName", "palisade-vm-driver");
        return DriverManager.getConnection(
                "jdbc:postgresql://" + endpoint + "/" + MANAGEMENT_DATABASE, properties);
    }

    static void ensureTenant(Connection admin, InstanceSpec spec) throws SQLException {
        try (PreparedStatement role = admin.prepareStatement("SELECT rolsuper FROM pg_roles WHERE rolname = ?")) {
            role.setString(1, spec.username());
            try (ResultSet rs = role.executeQuery()) {
                if (!rs.next()) {
                    try (Statement s = admin.createStatement()) {
                        s.execute(TenantBootstrap.createRole(spec.username()));
                    }
                } else if (rs.getBoolean(1)) {
                    throw new PalisadeException(
                            ErrorCode.INVALID_REQUEST,
                            "the tenant role '" + spec.username() + "' must not be a superuser");
                } else {
                    try (Statement s = admin.createStatement()) {
                        s.execute(TenantBootstrap.stripPowers(spec.username()));
                    }
                }
            }
        }
        try (PreparedStatement db = admin.prepareStatement("SELECT 1 FROM pg_database WHERE datname = ?")) {
            db.setString(1, spec.database());
            try (ResultSet rs = db.executeQuery()) {
                if (!rs.next()) {
                    try (Statement s = admin.createStatement()) {
                        s.execute(TenantBootstrap.createDatabase(spec.database(), spec.username()));
                    }
                }
            }
        }
    }

    /** Sets a role's password as a SCRAM verifier: the plaintext never reaches the server or its logs. */
    static void setPasswordVerifier(Connection admin, String role, String password) throws SQLException {
        try (Statement s = admin.createStatement()) {
            s.execute(TenantBootstrap.LOCAL_COMMIT);
            s.execute(TenantBootstrap.setPassword(role, password));
        }
    }

    /** Replaces the template's management secret with a fresh one known only to this host (file mode 600). */
    static void rotateManagementSecret(Connection admin, GuestImage image, InstancePaths paths)
            throws SQLException, IOException {
        byte[] bytes = new byte[32];
        RANDOM.nextBytes(bytes);
        String secret = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
        writePrivate(paths.pendingManagementSecret(), secret, true);
        setPasswordVerifier(admin, image.adminRole(), secret);
        Files.move(paths.pendingManagementSecret(), paths.managementSecret(), StandardCopyOption.REPLACE_EXISTING,
                StandardCopyOption.ATOMIC_MOVE);
    }

    private List<String> postgresLogOverSql(String id, int lines) {
        try (Connection admin = managementConnection(id);
                Statement s = admin.createStatement();
                ResultSet rs = s.executeQuery(
                        "WITH f AS (SELECT current_setting('data_directory') || '/../log/postgresql.log' AS path) "
                                + "SELECT pg_read_file(f.path, greatest((pg_stat_file(f.path)).size - 65536, 0), "
                                + "65536) FROM f")) {
            return rs.next() && rs.getString(1) != null ? lastLines(rs.getString(1), lines) : List.of();
        } catch (SQLException e) {
            return List.of();
        }
    }

    List<String> postgresLogFromVolume(String id, int lines) {
        Path volume = paths(id).dataVolume();
        if (!Files.exists(volume)) {
            return List.of();
        }
        // read-only catastrophic mode: never writes to the image; as the VM's own user, not root (the guest wrote it)
        Processes.Result result = VolumeTools.run(qemuUser(id), volume,
                List.of("debugfs", "-c", "-R", "cat /log/postgresql.log", VolumeTools.DEVICE), Duration.ofSeconds(30));
        if (!result.ok()) {
            return List.of();
        }
        String text = result.output().lines()
                .filter(l -> !l.startsWith("debugfs ") && !l.contains("catastrophic mode"))
                .reduce((a, b) -> a + "\n" + b)
                .orElse("");
        return lastLines(text, lines);
    }

    static List<String> lastLines(String text, int lines) {
        List<String> all = text.lines().toList();
        return all.subList(Math.max(0, all.size() - lines), all.size());
    }

    // ------------------------------------------------------------------------------------------------- helpers

    InstancePaths paths(String id) {
        if (id.contains("/") || id.startsWith(".")) {
            throw PalisadeException.invalid("invalid instance id '" + id + "'");
        }
        return InstancePaths.of(config.instancesDir(), id);
    }

    private String guestAddress() {
        try {
            return GuestImage.load(config.imageDir()).guestAddress();
        } catch (PalisadeException e) {
            return "172.31.255.2";
        }
    }

    private String guestGateway() {
        try {
            return GuestImage.load(config.imageDir()).guestGateway();
        } catch (PalisadeException e) {
            return "172.31.255.1";
        }
    }

    static String readSecret(Path file) throws IOException {
        return Files.readString(file, StandardCharsets.UTF_8).strip();
    }

    private static void writePrivate(Path file, String content, boolean sync) throws IOException {
        Files.deleteIfExists(file);
        Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        if (sync) {
            Files.writeString(file, content, StandardCharsets.UTF_8, StandardOpenOption.WRITE, StandardOpenOption.SYNC);
        } else {
            Files.writeString(file, content, StandardCharsets.UTF_8, StandardOpenOption.WRITE);
        }
    }

    private static void rotate(Path current, Path previous) {
        try {
            if (Files.exists(current)) {
                Files.move(current, previous, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            deleteQuietly(current);
        }
    }

    static void deleteQuietly(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException ignored) {
            // best effort
        }
    }

    /** An exception's message without anything that could be a secret (JDBC messages never contain passwords). */
    static String safeMessage(Throwable e) {
        return e.getClass().getSimpleName() + ": " + e.getMessage();
    }
}
