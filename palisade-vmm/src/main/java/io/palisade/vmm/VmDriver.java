package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import io.palisade.host.TenantUsers;
import io.palisade.spi.AdminAccess;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.HostRoute;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.Rung;
import io.palisade.spi.TenantCredentials;
import io.palisade.spi.TenantPlace;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
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
 * #suspend(InstanceSpec)} saves the device state next to the VM's own memory file and lets QEMU exit; {@link
 * #resume(InstanceSpec, ProgressListener)} restores it at most once, or cold boots from the volume.
 *
 * <p>Everything an instance has on the host is named from its id, so {@link #destroy(String)} works after a crash of
 * palisade. VMs keep running when the driver is closed. Thread-safe for calls on different ids; callers serialise
 * lifecycle calls (provision, start, stop, suspend, resume, destroy) on one id. Template builds are serialised per
 * template key.
 *
 * <p>This class orchestrates; the work is done by one class per job: {@link TemplateCache} (template snapshots),
 * {@link SnapshotRestore} (clone and resume restores), {@link BootWatchdog} (cold boots), {@link QemuLauncher} and
 * {@link QemuProcesses} (starting, finding and ending QEMU), {@link VmSuspension} (suspend/resume), {@link GuestAdmin}
 * (management SQL), {@link GuestClock} (clock resync after a restore), {@link VmFiles} (host files).
 */
public final class VmDriver implements IsolationDriver {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);

    private final VmDriverConfig config;
    private final NetworkPool pool;
    private final Accelerator accelerator;
    private final long tscKhz;
    private final TenantUsers users;
    /** The users VMs ran as before they had a kind of their own (a QEMU started then keeps its user). */
    private final TenantUsers legacyUsers;
    private final QemuProcesses processes;
    private final QemuLauncher launcher = new QemuLauncher(this);
    private final BootWatchdog watchdog = new BootWatchdog(this);
    private final SnapshotRestore snapshots = new SnapshotRestore(this);
    private final TemplateCache templates;
    private final VmCreate creator;
    private final VmProbe prober;
    private final GuestLogs logs = new GuestLogs(this);
    private final VmInventory inventory = new VmInventory(this);
    private final VmAdminAccess adminAccess = new VmAdminAccess(this);
    private final VmSuspension suspension = new VmSuspension(this);
    private final VmRestore restore = new VmRestore(this);
    private final VmRename renamer = new VmRename(this);
    private final VmMoveAccess moveAccess = new VmMoveAccess(this);
    private volatile TemplatePreparer preparer;

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
        this.templates = new TemplateCache(this, requireNonNull(templatesDir, "templatesDir is null"));
        templates.removeStale(config.instancesDir().resolve(".templates"));
        this.creator = new VmCreate(this, cloneCreate);
        this.pool = new NetworkPool(config.networkPool(), config.instancesDir().resolve(".slots"));
        // not the tenant servers' users: a move runs the database's process instance beside its VM under one id
        this.users = new TenantUsers(config.serviceUser(), "vm");
        this.legacyUsers = new TenantUsers(config.serviceUser());
        try {
            users.nameOf("db-00000000");
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("the service user name '" + config.serviceUser().name()
                    + "' is too long to name the VMs' OS users: " + e.getMessage(), e);
        }
        this.processes = new QemuProcesses(config.instancesDir());
        this.accelerator = Accelerator.probe(config.accelerator());
        this.prober = new VmProbe(config, accelerator);
        this.tscKhz = config.hostTscKhz() != 0 ? config.hostTscKhz() : Accelerator.hostTscKhz(Path.of("/proc/cpuinfo"));
        try {
            Files.createDirectories(config.instancesDir());
            // sockets QEMU connects to after dropping to -runas (saving a state) live here: each VM's QEMU runs as a
            // user of its own and reaches only its own socket (owned by that user, mode 600) in this unlistable dir
            Path mig = migrationDir();
            Files.createDirectories(mig);
            if (config.serviceUser().dropsPrivileges()) {
                Files.setAttribute(mig, "unix:uid", 0, LinkOption.NOFOLLOW_LINKS);
                Files.setAttribute(mig, "unix:gid", 0, LinkOption.NOFOLLOW_LINKS);
            }
            Files.setPosixFilePermissions(mig, PosixFilePermissions.fromString(
                    config.serviceUser().dropsPrivileges() ? "rwx--x--x" : "rwx------"));
        } catch (IOException e) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "cannot create vm.instances-dir " + config.instancesDir(), e);
        }
    }

    @Override
    public Rung rung() {
        return Rung.VM;
    }

    public VmDriverConfig config() {
        return config;
    }

    public Accelerator accelerator() {
        return accelerator;
    }

    /** How often the boot watchdog killed and restarted a hung guest since this driver started. */
    public long watchdogRetries() {
        return watchdog.retries();
    }

    /** See {@link VmProbe}: QEMU, root, the guest image; the default rung only with KVM. */
    @Override
    public DriverProbe probe() {
        return prober.probe(name());
    }

    // ---------------------------------------------------------------------------------------------------- lifecycle

    /**
     * See {@link VmCreate}: a clone of the template snapshot for the spec's image, version and plan (built on first
     * need), else a cold boot; then the tenant's role, database and password and a fresh management secret.
     */
    @Override
    public RunningInstance provision(InstanceSpec spec, TenantCredentials credentials, ProgressListener progress) {
        return creator.provision(spec, credentials, progress);
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
            Endpoint endpoint = slot.postgresEndpoint();
            return new RunningInstance(id, endpoint, Instant.now(), Map.of(
                    "accelerator", accelerator.kind().slug(), "pid", Long.toString(pid(id).orElse(-1L))));
        }
        if (isSuspended(id)) {
            return resume(spec, progress);
        }
        GuestImage image = GuestImage.load(config.imageDir());
        BootWatchdog.Boot boot = watchdog.boot(spec, image, paths, progress);
        return new RunningInstance(id, boot.endpoint(), Instant.now(), boot.details());
    }

    @Override
    public void stop(String id) {
        requireNonNull(id, "id is null");
        moveAccess.closeRoutes(id);
        Optional<Long> pid = processes.findPid(id);
        if (pid.isPresent()) {
            processes.shutdown(id, pid.get(), paths(id).qmpSocket(), config.stopTimeout());
        }
        processes.forget(id);
        network(id).teardown();
        config.cgroups().find(cgroupName(id)).ifPresent(Cgroups.Group::remove);
        VmFiles.deleteQuietly(paths(id).qmpSocket());
        VmFiles.deleteQuietly(paths(id).pidFile());
        if (!Files.exists(paths(id).stateFile())) {
            // a cold boot starts from a fresh one; a suspended VM keeps it
            VmFiles.deleteQuietly(paths(id).memoryFile());
        }
    }

    @Override
    public void destroy(String id) {
        requireNonNull(id, "id is null");
        moveAccess.closeRoutes(id);
        Optional<Process> starting = processes.started(id);
        if (starting.isPresent() && starting.get().isAlive()) {
            processes.kill(id, starting.get().pid()); // still in the wrapper (sh, ip netns exec) that becomes QEMU
        }
        processes.findPid(id).ifPresent(pid -> processes.kill(id, pid));
        processes.forget(id);
        adminAccess.forget(id);
        network(id).teardown();
        config.cgroups().find(cgroupName(id)).ifPresent(Cgroups.Group::remove);
        pool.release(id);
        VmFiles.deleteQuietly(migrationSocket(id));
        Path dir = paths(id).dir();
        if (Files.exists(dir)) {
            Processes.check(List.of("rm", "-rf", "--", dir.toString()), Duration.ofMinutes(2));
        }
        if (!TemplateCache.isTemplate(id)) {
            users.remove(id);
        }
    }

    /**
     * The OS user a VM's QEMU drops to: one of its own for a tenant's VM (a QEMU escape reaches no other VM's files,
     * sockets or processes); palisade's service user for a template VM, which holds no tenant data.
     */
    ServiceUser qemuUser(String id) {
        return TemplateCache.isTemplate(id) ? config.serviceUser() : users.forInstance(id);
    }

    /**
     * The OS user the running QEMU {@code pid} of {@code id} runs as: {@link #qemuUser}, except for a QEMU started by
     * an earlier palisade, whose VMs ran as {@code <service user>-<id>}; it keeps that user until it stops.
     */
    ServiceUser runningQemuUser(String id, long pid) {
        ServiceUser own = qemuUser(id);
        if (!own.dropsPrivileges()) {
            return own;
        }
        // only that older user: the pid was found by its command line, which a QEMU can write itself
        return QemuProcesses.uid(pid).filter(uid -> uid != own.uid())
                .flatMap(ServiceUser::named)
                .filter(user -> user.name().equals(legacyUsers.nameOf(id)))
                .orElse(own);
    }

    TenantUsers tenantUsers() {
        return users;
    }

    // ---------------------------------------------------------------------------------- backups, restore, rename

    /**
     * The guest's PostgreSQL at its namespace's veth address, as the image's management role with this VM's current
     * management secret; see {@link VmAdminAccess}.
     */
    @Override
    public AdminAccess adminAccess(String id) {
        requireNonNull(id, "id is null");
        return adminAccess.access(id);
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
        adminAccess.forget(fromId);
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
        return processes.hasProcess(id);
    }

    /** Drops what the driver remembers about an instance's processes (it has none any more). */
    void forget(String id) {
        processes.forget(id);
        adminAccess.forget(id);
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
        try (Connection admin = managementConnection(id)) {
            GuestAdmin.setPasswordVerifier(admin, username, password);
        } catch (SQLException e) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "cannot set the password of '" + username + "' on vm " + id + ": "
                            + e.getMessage(), e);
        }
    }

    @Override
    public boolean isRunning(String id) {
        return processes.findPid(id).isPresent();
    }

    /** See {@link VmInventory#list}: directories, slots, QEMU processes and orphan namespaces of this driver. */
    @Override
    public Set<String> listInstances() {
        return inventory.list();
    }

    @Override
    public InstanceStats stats(String id) {
        return inventory.stats(id);
    }

    /**
     * The PostgreSQL log of the instance (read over the management connection while it runs, from the stopped
     * volume with {@code debugfs} otherwise), falling back to the guest's serial console.
     */
    @Override
    public List<String> logTail(String id, int lines) {
        return logs.logTail(id, lines);
    }

    /** The serial console of the instance's current (or last) boot. */
    public List<String> serialTail(String id, int lines) {
        return Processes.tailFile(paths(id).serialLog(), lines);
    }

    /** The PostgreSQL log read from the stopped volume. */
    List<String> postgresLogFromVolume(String id, int lines) {
        return logs.fromVolume(id, lines);
    }

    /** The QEMU pid of a running instance. */
    public Optional<Long> pid(String id) {
        return processes.findPid(id);
    }

    /** Where the instance's PostgreSQL listens (its namespace's veth address), whether or not it runs. */
    public Endpoint endpoint(String id) {
        NetworkPool.Slot slot = pool.find(id).orElseThrow(
                () -> PalisadeException.notFound("vm instance " + id + " has no network slot on this host"));
        return slot.postgresEndpoint();
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
        return GuestAdmin.adminConnection(id, paths(id), GuestImage.load(config.imageDir()), endpoint(id));
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

    /**
     * Prepares the template snapshot of {@code plan} and {@code version} in the background now, and again whenever
     * its key changes (a new guest image), checked every {@code checkInterval}; see {@link TemplatePreparer}. Creates
     * of that plan meanwhile wait for it. No-op when clones are disabled or preparation already runs.
     */
    public synchronized void prepareTemplate(Plan plan, PostgresVersion version, Duration checkInterval) {
        if (creator.clones() && preparer == null) {
            preparer = new TemplatePreparer(this, templates, plan, version, checkInterval);
        }
    }

    /**
     * Makes sure the template snapshot of {@code plan} and {@code version} for the current guest image exists, building
     * it now if not: blocks, with the build's phases to {@code progress}. What {@code palisade prepare-template} runs
     * before a server starts, so a host's first create clones too. Throws {@code NOT_READY} when the vm rung
     * is not usable here and {@code DRIVER_FAILURE} when the build failed, the reason in the message.
     */
    public PreparedTemplate prepareTemplateNow(Plan plan, PostgresVersion version, ProgressListener progress) {
        return TemplatePreparer.prepareNow(this, templates, plan, version, progress);
    }

    /**
     * For a shutdown hook of a process that exits mid-build (a template VM's QEMU runs in a session of its own and
     * would outlive the JVM): this driver starts no QEMU any more, kills the template VMs being built and waits, at most
     * {@code bound}, for those builds to fail and remove what they made; nothing is published. Whatever is left after
     * the bound, the next build of that template removes first. Returns whether the builds finished within it.
     */
    public boolean abandonTemplateBuilds(Duration bound) {
        return templates.abandonBuilds(bound);
    }

    /** The default plan's template snapshot while it is prepared in the background ({@code template_*} keys). */
    @Override
    public Map<String, String> healthDetails() {
        TemplatePreparer current = preparer;
        return current == null ? Map.of() : current.status();
    }

    /** The template preparer, if {@link #prepareTemplate} started one. */
    Optional<TemplatePreparer> preparer() {
        return Optional.ofNullable(preparer);
    }

    @Override
    public void close() {
        TemplatePreparer current = preparer;
        if (current != null) {
            current.close();
        }
        moveAccess.closeAll(); // routes to the host live only as long as this driver
        processes.forgetAll(); // VMs keep running; a new driver finds them through their pid files
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
    public void suspend(InstanceSpec spec) {
        requireNonNull(spec, "spec is null");
        suspension.suspend(spec);
    }

    @Override
    public boolean isSuspended(String id) {
        return suspension.isSuspended(id);
    }

    /**
     * Continues a suspended instance from its saved state (taken first, so it is never resumed twice), resyncs the
     * guest clock and returns once the guest is ready ({@code details.restore_ready_by}: {@link RestoreReadiness}; a
     * state saved while PostgreSQL answered is ready once the guest acknowledges the clock step). Without a usable
     * state (missing, corrupt, QEMU dying) it cold boots from the volume, which PostgreSQL's crash recovery makes
     * consistent. {@code details.resume_path}: {@link ResumePath}.
     */
    @Override
    public RunningInstance resume(InstanceSpec spec, ProgressListener progress) {
        requireNonNull(spec, "spec is null");
        requireNonNull(progress, "progress is null");
        String id = spec.id();
        if (!Files.exists(paths(id).dataVolume())) {
            throw PalisadeException.notFound("vm instance " + id + " has no data volume on this host");
        }
        if (isRunning(id)) {
            return start(spec, progress);
        }
        return suspension.resume(spec, progress);
    }

    // ------------------------------------------------------------------------------- parts (package-private)

    /** The templates directory of this driver. */
    public Path templatesDir() {
        return templates.dir();
    }

    /** See {@link BootWatchdog#bootForRestore}. */
    BootWatchdog.Boot bootForRestore(InstanceSpec spec, GuestImage image, InstancePaths paths,
            ProgressListener progress) {
        return watchdog.bootForRestore(spec, image, paths, progress);
    }

    /** Kills a QEMU that was restoring or booting for the instance and removes its pid file and cgroup. */
    void abandonRestore(String id) {
        launcher.abandon(id);
    }

    long tscKhz() {
        return tscKhz;
    }

    QemuProcesses processes() {
        return processes;
    }

    QemuLauncher launcher() {
        return launcher;
    }

    BootWatchdog watchdog() {
        return watchdog;
    }

    SnapshotRestore snapshots() {
        return snapshots;
    }

    TemplateCache templates() {
        return templates;
    }

    private Path migrationDir() {
        return config.instancesDir().resolve(".mig");
    }

    Path migrationSocket(String id) {
        return migrationDir().resolve(id + ".sock");
    }

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

    /** An exception's message without anything that could be a secret (JDBC messages never contain passwords). */
    static String safeMessage(Throwable e) {
        return e.getClass().getSimpleName() + ": " + e.getMessage();
    }
}
