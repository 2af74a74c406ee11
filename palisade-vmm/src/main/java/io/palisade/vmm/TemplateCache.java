package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Processes;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ProgressListener;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Template snapshots, the source of clone creates: one saved VM (memory file, device state, data volume taken at the
 * same instant) per key (image, PostgreSQL major, plan, accelerator, TSC rate, QEMU binary) under the templates
 * directory. Locates a complete one, builds a missing one (a cold-booted template VM, checkpointed and saved), and
 * deletes one whose clones keep failing. A caller that asks for a template while it is being built waits for that
 * build (it never starts a second one); each build logs its phases and {@link #status} reports them. Thread-safe:
 * builds are serialised per key; a key that failed to build is remembered and not retried by this driver.
 *
 * <p>The directory may be shared by every palisade on the host (the server's default is beside the guest image): builds
 * of one template directory are serialised across drivers in this JVM (a lock per directory) and across processes (an
 * exclusive file lock on {@code <key>.lock} held for the build), so a server that starts on a host where another
 * server, or an earlier data directory, already built the template clones it from its first create.
 */
final class TemplateCache {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);
    /** The instance ids of template VMs start with this. */
    static final String TEMPLATE_PREFIX = "tpl-";
    private static final int MAX_CLONE_FAILURES = 3;
    /** How long a build waits for another process building the same template (a TCG build takes ~5–10 s). */
    private static final Duration HOST_LOCK_WAIT = Duration.ofMinutes(5);
    /**
     * The version of what a build puts into a template (part of the key): a template built another way is not
     * reused. f2: the tenant database warmed and the {@code tenant} record.
     */
    static final String FORMAT = "f2";
    /** The file in a template's directory whose modification time says when it was last wanted. */
    static final String USED = "used";
    /** The file a build writes last into a template's directory: its presence makes the template complete. */
    static final String COMPLETE = "complete";

    /** A saved template VM: memory file, device state, and the data volume taken at the same instant. Immutable. */
    record Template(Path dir) {
        Template {
            requireNonNull(dir, "dir is null");
        }

        Path memory() {
            return dir.resolve("memory.ram");
        }

        Path state() {
            return dir.resolve("state");
        }

        Path volume() {
            return dir.resolve("data.ext4");
        }

        String key() {
            return dir.getFileName().toString();
        }

        /** The tenant role and database the template holds (role no superuser, owner of the database), if recorded. */
        Path tenant() {
            return dir.resolve("tenant");
        }

        /**
         * Whether the template holds this tenant role and database, as checked when it was built (older templates
         * recorded nothing: false).
         */
        boolean holdsTenant(String role, String database) {
            try {
                return Files.readAllLines(tenant(), StandardCharsets.UTF_8).equals(List.of(role, database));
            } catch (IOException e) {
                return false;
            }
        }
    }

    /** Where a template stands: ready, building (with its phase), failed (with the error) or missing. */
    record Status(String key, TemplateState state, String phase, long elapsedMs, String error) {
        Status {
            requireNonNull(key, "key is null");
            requireNonNull(state, "state is null");
            requireNonNull(phase, "phase is null");
            requireNonNull(error, "error is null");
        }
    }

    /** The phase of a build in progress and when it started. */
    private record Building(String phase, long startNanos) {}

    private final VmDriver driver;
    private final Path templatesDir;
    private final Map<String, Building> inProgress = new ConcurrentHashMap<>();
    private final AtomicInteger builds = new AtomicInteger();
    /** One lock per template directory, JVM-wide: drivers sharing a templates directory build each key once. */
    private static final Map<Path, Object> LOCKS = new ConcurrentHashMap<>();
    private final Map<String, String> failed = new ConcurrentHashMap<>();
    private final Map<String, Integer> cloneFailures = new ConcurrentHashMap<>();
    /** Ids of the template VMs being built now (hidden from {@code listInstances}). */
    private final Set<String> building = ConcurrentHashMap.newKeySet();

    TemplateCache(VmDriver driver, Path templatesDir) {
        this.driver = requireNonNull(driver, "driver is null");
        this.templatesDir = requireNonNull(templatesDir, "templatesDir is null");
    }

    Path dir() {
        return templatesDir;
    }

    /**
     * Deletes {@code legacy}, the templates directory of releases that kept one per data directory, when this cache
     * lives elsewhere (running clones keep their private mapping of a deleted memory file; suspended clones have their
     * own).
     */
    void removeStale(Path legacy) {
        try {
            if (Files.isDirectory(legacy, java.nio.file.LinkOption.NOFOLLOW_LINKS)
                    && !legacy.toRealPath().equals(realDir())) {
                log.info("removing {}: templates are kept in {} now", legacy, templatesDir);
                Processes.run(List.of("rm", "-rf", "--", legacy.toString()), Duration.ofMinutes(1), null);
            }
        } catch (IOException e) {
            log.debug("old templates at {} left: {}", legacy, e.getMessage());
        }
    }

    static boolean isTemplate(String id) {
        return id.startsWith(TEMPLATE_PREFIX);
    }

    /**
     * For a process that exits mid-build: no QEMU starts any more, the template VMs being built are killed (the process
     * this driver started, even while it is still in its wrapper, and whatever QEMU of that id runs), and this waits
     * (at most {@code bound}) for their builds to fail and clean up after themselves (VM, namespace, slot, staging
     * directory). A build already past its save may still publish its template, whole. Returns whether the builds all
     * finished within the bound.
     */
    boolean abandonBuilds(Duration bound) {
        driver.launcher().refuseStarts();
        for (String id : buildingIds()) {
            try {
                // the wrapper execs into QEMU with the same pid: SIGKILL reaches whichever runs now
                driver.processes().started(id).ifPresent(Process::destroyForcibly);
                driver.processes().findPid(id).ifPresent(pid -> driver.processes().kill(id, pid));
            } catch (RuntimeException e) {
                log.warn("template VM {}: cannot kill its QEMU ({}); its build cleans up after it", id,
                        VmDriver.safeMessage(e));
            }
        }
        long deadline = System.nanoTime() + bound.toNanos();
        while (!building.isEmpty() && System.nanoTime() < deadline) {
            Processes.sleep(Duration.ofMillis(20));
        }
        return building.isEmpty();
    }

    /** Ids of the template VMs being built now: this driver's own work, not orphans. */
    Set<String> buildingIds() {
        return Set.copyOf(building);
    }

    /** The cache key of a template: everything that must match between the saved VM and its clones. */
    String key(InstanceSpec spec, GuestImage image) {
        // a QEMU upgrade may change the migration format: its binary is part of the key
        Path qemuBinary = driver.config().qemuBinary();
        String qemu;
        try {
            qemu = Long.toString(Files.size(qemuBinary), 36)
                    + Long.toString(Files.getLastModifiedTime(qemuBinary).toMillis() / 1000, 36);
        } catch (IOException e) {
            qemu = "unknown";
        }
        // one build of the image (guest/build.sh --force keeps the key but makes a new admin secret): its manifest
        String build;
        try {
            build = VmFiles.sha256Hex(Files.readString(image.dir().resolve("manifest.json"), StandardCharsets.UTF_8))
                    .substring(0, 8);
        } catch (IOException e) {
            build = "unknown";
        }
        return image.key() + "-pg" + spec.version().major() + "-c" + spec.plan().cpu() + "-m" + spec.plan().memoryMb()
                + "-d" + spec.plan().diskMb() + "-" + driver.accelerator().kind().slug() + "-t" + driver.tscKhz()
                + "-q" + VmFiles.sha256Hex(qemu).substring(0, 8) + "-b" + build + "-" + FORMAT;
    }

    /**
     * The template snapshot for the spec's version and plan, built on first need (a cold boot plus a save, serialised
     * per key); empty when it cannot be built (then creates cold boot, and the reason is logged once).
     */
    Optional<Template> template(InstanceSpec spec, GuestImage image, ProgressListener progress) {
        Optional<Template> found = findOrBuild(spec, image, progress);
        found.ifPresent(TemplateCache::markUsed);
        return found;
    }

    private Optional<Template> findOrBuild(InstanceSpec spec, GuestImage image, ProgressListener progress) {
        String key = key(spec, image);
        Template template = new Template(templatesDir.resolve(key));
        if (isComplete(template)) {
            return Optional.of(template);
        }
        if (failed.containsKey(key)) {
            return Optional.empty();
        }
        if (inProgress.containsKey(key)) {
            progress.phase("waiting for the template snapshot " + key + " being prepared");
        }
        synchronized (lock(key)) {
            if (isComplete(template)) {
                return Optional.of(template);
            }
            if (failed.containsKey(key)) { // the build this caller waited for failed
                return Optional.empty();
            }
            try (FileChannel hostLock = lockAcrossProcesses(key, progress)) {
                if (isComplete(template)) { // another palisade on this host built it meanwhile
                    log.info("template snapshot {} was built by another palisade sharing {}", key, templatesDir);
                    return Optional.of(template);
                }
                progress.phase("building the template snapshot " + key + " (once per image and plan)");
                build(spec, image, key, template, progress);
                return Optional.of(template);
            } catch (HostLockTimeout e) {
                log.warn("template snapshot {}: {}; this create cold boots", key, e.getMessage());
                return Optional.empty();
            } catch (RuntimeException | IOException | SQLException e) {
                failed.put(key, VmDriver.safeMessage(e));
                log.warn("cannot build the template snapshot {} ({}); creates of this plan cold boot", key,
                        VmDriver.safeMessage(e));
                return Optional.empty();
            }
        }
    }

    /** Where the template of this key stands. */
    Status status(String key) {
        Building building = inProgress.get(key);
        if (building != null) {
            return new Status(key, TemplateState.BUILDING, building.phase(),
                    (System.nanoTime() - building.startNanos()) / 1_000_000, "");
        }
        if (isComplete(new Template(templatesDir.resolve(key)))) {
            return new Status(key, TemplateState.READY, "", 0, "");
        }
        String error = failed.get(key);
        return error != null ? new Status(key, TemplateState.FAILED, "", 0, error)
                : new Status(key, TemplateState.MISSING, "", 0, "");
    }

    /** How many template builds this cache started (successful or not). */
    int builds() {
        return builds.get();
    }

    /**
     * Records that a palisade wants this template now (a clone, or a server that prepares it): the modification time
     * of its {@code used} file, which {@link TemplatePruner} reads. Best effort: a template that cannot be marked is
     * only pruned sooner.
     */
    static void markUsed(Template template) {
        Path used = template.dir().resolve(USED);
        try {
            if (!Files.exists(used)) {
                Files.createFile(used);
            }
            Files.setLastModifiedTime(used, java.nio.file.attribute.FileTime.from(java.time.Instant.now()));
        } catch (IOException e) {
            log.debug("cannot mark the template {} used: {}", template.key(), e.getMessage());
        }
    }

    static boolean isComplete(Template template) {
        return Files.exists(template.dir().resolve(COMPLETE));
    }

    /** The JVM-wide lock of one template (package-private for tests). */
    Object lock(String key) {
        Path dir;
        try {
            dir = realDir();
        } catch (IOException e) {
            dir = templatesDir.toAbsolutePath().normalize(); // the build fails on it, and says why
        }
        return LOCKS.computeIfAbsent(dir.resolve(key), k -> new Object());
    }

    /**
     * An exclusive lock on {@code <key>.lock} in the templates directory (made 0700: no other user can open the file
     * and hold it), held (the channel open) until closed: another process building the same template there is waited
     * for, at most {@link #HOST_LOCK_WAIT} (then {@link HostLockTimeout}: this create cold boots). Call with {@link
     * #lock(String)} held (one JVM cannot hold two locks on one file).
     */
    private FileChannel lockAcrossProcesses(String key, ProgressListener progress) throws IOException {
        Path dir = realDir();
        FileChannel channel = FileChannel.open(dir.resolve(key + ".lock"),
                Set.of(StandardOpenOption.CREATE, StandardOpenOption.WRITE),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try {
            if (channel.tryLock() == null) {
                String phase = "waiting for another palisade on this host to build it";
                progress.phase("template snapshot " + key + ": " + phase);
                inProgress.put(key, new Building(phase, System.nanoTime()));
                try {
                    long deadline = System.nanoTime() + HOST_LOCK_WAIT.toNanos();
                    while (channel.tryLock() == null) {
                        if (System.nanoTime() > deadline) {
                            throw new HostLockTimeout("another process has held " + dir.resolve(key + ".lock")
                                    + " for over " + HOST_LOCK_WAIT.toMinutes() + " minutes");
                        }
                        Processes.sleep(Duration.ofMillis(100));
                    }
                } finally {
                    inProgress.remove(key);
                }
            }
            return channel;
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /**
     * The exclusive lock on {@code <key>.lock}, or empty at once when another process holds it (e.g. building or
     * deleting that template). Call with {@link #lock(String)} held: it keeps this JVM to one channel per lock file (a
     * second channel's lock attempt would throw, and closing it would release the first one's POSIX lock too).
     */
    Optional<FileChannel> tryLockAcrossProcesses(String key) throws IOException {
        FileChannel channel = FileChannel.open(realDir().resolve(key + ".lock"),
                Set.of(StandardOpenOption.CREATE, StandardOpenOption.WRITE),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try {
            if (channel.tryLock() == null) {
                channel.close();
                return Optional.empty();
            }
            return Optional.of(channel);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** The templates directory, created (0700) if missing, as its real path (one lock per directory, symlinks too). */
    private Path realDir() throws IOException {
        Files.createDirectories(templatesDir);
        try {
            Files.setPosixFilePermissions(templatesDir, PosixFilePermissions.fromString("rwx------"));
        } catch (IOException e) {
            log.debug("cannot make {} private: {}", templatesDir, e.getMessage());
        }
        return templatesDir.toRealPath();
    }

    /** Another process held a template's build lock past {@link #HOST_LOCK_WAIT}. */
    private static final class HostLockTimeout extends IOException {
        HostLockTimeout(String message) {
            super(message);
        }
    }

    /** A clone of the template worked: its run of failures ends. */
    void cloneSucceeded(Template template) {
        cloneFailures.remove(template.key());
    }

    /**
     * A template that failed {@value #MAX_CLONE_FAILURES} clones in a row (its restore, not this host's network) is
     * deleted; the next create rebuilds it. Only that very build is deleted: one that another palisade sharing the
     * directory rebuilt meanwhile (another {@code complete} file) is kept, and the count starts again.
     */
    void cloneFailed(Template template) {
        String key = template.key();
        if (cloneFailures.merge(key, 1, Integer::sum) < MAX_CLONE_FAILURES) {
            return;
        }
        String failedBuild = buildOf(template);
        synchronized (lock(key)) {
            cloneFailures.remove(key);
            try (FileChannel hostLock = lockAcrossProcesses(key, ProgressListener.NONE)) {
                if (failedBuild == null || !failedBuild.equals(buildOf(template))) {
                    return; // rebuilt meanwhile (or already gone)
                }
                log.warn("template snapshot {} failed {} clones in a row; deleting it (the next create rebuilds it)",
                        key, MAX_CLONE_FAILURES);
                // clones map the memory file privately: running ones keep their mapping, the directory can go
                Processes.run(List.of("rm", "-rf", "--", template.dir().toString()), Duration.ofMinutes(1), null);
            } catch (IOException | RuntimeException e) {
                log.warn("cannot delete the template snapshot {}: {}", key, VmDriver.safeMessage(e));
            }
        }
    }

    /**
     * Which build of the template is on disk now: its {@code complete} file's inode and modification time (an inode
     * number alone may be reused by the next build); null if none.
     */
    private static String buildOf(Template template) {
        try {
            var attributes = Files.readAttributes(template.dir().resolve(COMPLETE),
                    java.nio.file.attribute.BasicFileAttributes.class);
            return attributes.fileKey() + "@" + attributes.lastModifiedTime().to(TimeUnit.NANOSECONDS);
        } catch (IOException e) {
            return null;
        }
    }

    private void build(InstanceSpec spec, GuestImage image, String key, Template template, ProgressListener progress)
            throws IOException, SQLException {
        long start = System.nanoTime();
        // drivers of other data directories may share the templates directory: their template VMs get other ids
        String id = TEMPLATE_PREFIX + VmFiles.sha256Hex(driver.config().instancesDir() + "|" + templatesDir + "/" + key)
                .substring(0, 16);
        builds.incrementAndGet();
        building.add(id);
        ProgressListener phases = phase -> {
            Building previous = inProgress.get(key);
            inProgress.put(key, new Building(phase, previous == null ? start : previous.startNanos()));
            log.info("template snapshot {}: {}", key, phase);
            progress.phase(phase);
        };
        try {
            phases.phase("copying the template volume");
            build(spec, image, key, template, id, start, phases);
        } finally {
            inProgress.remove(key);
            building.remove(id);
        }
    }

    private void build(InstanceSpec spec, GuestImage image, String key, Template template, String id, long start,
            ProgressListener phases) throws IOException, SQLException {
        InstanceSpec templateSpec = new InstanceSpec(id, spec.version(), spec.plan(), "app", "app");
        InstancePaths paths = driver.paths(id);
        driver.destroy(id); // a leftover of a crashed build
        Path staging = templatesDir.resolve(key + ".building");
        try {
            Files.createDirectories(paths.dir());
            Files.setPosixFilePermissions(paths.dir(), PosixFilePermissions.fromString("rwx------"));
            VmFiles.createVolume(image.templateVolume(spec.version()), paths.dataVolume(), spec.plan().diskMb());
            BootWatchdog.Boot boot = driver.watchdog().boot(templateSpec, image, paths, phases);
            phases.phase("checkpointing and saving the template VM");
            boolean holdsTenant;
            try (Connection admin = GuestAdmin.adminConnection(id, paths, image, boot.endpoint())) {
                holdsTenant = GuestAdmin.holdsTenant(admin, templateSpec.username(), templateSpec.database());
                if (!holdsTenant) {
                    checkpointAndSync(admin);
                }
            }
            if (holdsTenant) {
                // a clone's tenant then finds its database's catalog cached and its relcache init file written
                try (Connection tenantDb = GuestAdmin.connect(boot.endpoint(), image.adminRole(),
                                GuestAdmin.readSecret(image.adminSecretFile()), templateSpec.database());
                        Statement s = tenantDb.createStatement()) {
                    s.execute("SELECT count(*) FROM pg_catalog.pg_class");
                    checkpointAndSync(tenantDb);
                }
            }
            long pid = driver.processes().findPid(id).orElseThrow(
                    () -> new PalisadeException(ErrorCode.DRIVER_FAILURE, "the template VM exited"));
            // the management backend exits: clones start with no client and no exit half done
            long quietMs = QemuProcesses.awaitQuiet(
                    QemuProcesses.cpuMicros(driver.config().cgroups().find(driver.cgroupName(id)), pid),
                    Duration.ofSeconds(1));
            log.info("template snapshot {}: guest quiet after {} ms", key, quietMs);
            try (Qmp qmp = Qmp.connect(paths.qmpSocket(), Duration.ofSeconds(5))) {
                Migration.save(qmp, driver.migrationSocket(id), driver.qemuUser(id), paths.partialStateFile(), true,
                        Duration.ofMinutes(1), () -> {});
                try {
                    qmp.execute("quit", Map.of(), Duration.ofSeconds(5));
                } catch (PalisadeException e) {
                    // closed as it quits
                }
            }
            if (!Processes.awaitExit(pid, Duration.ofSeconds(10))) {
                driver.processes().kill(id, pid);
            }
            driver.processes().reap(id);
            phases.phase("publishing the template snapshot");
            Processes.check(List.of("rm", "-rf", "--", staging.toString()), Duration.ofMinutes(1));
            Files.createDirectories(staging);
            Files.setPosixFilePermissions(staging, PosixFilePermissions.fromString("rwx------"));
            // the templates directory may be on another file system than the instances (beside the guest image)
            VmFiles.moveSparse(paths.memoryFile(), staging.resolve("memory.ram"));
            VmFiles.moveSparse(paths.dataVolume(), staging.resolve("data.ext4"));
            VmFiles.moveSparse(paths.partialStateFile(), staging.resolve("state"));
            if (holdsTenant) {
                VmFiles.writePrivate(staging.resolve("tenant"),
                        templateSpec.username() + "\n" + templateSpec.database() + "\n", true);
            }
            for (String name : List.of("memory.ram", "data.ext4", "state")) {
                VmFiles.forceFile(staging.resolve(name));
            }
            VmFiles.writePrivate(staging.resolve(COMPLETE), key + "\n", true);
            Files.createDirectories(templatesDir);
            Processes.check(List.of("rm", "-rf", "--", template.dir().toString()), Duration.ofMinutes(1));
            Files.move(staging, template.dir(), StandardCopyOption.ATOMIC_MOVE);
            log.info("template snapshot {} built in {} ms ({} bytes of RAM on disk)", key,
                    (System.nanoTime() - start) / 1_000_000, VmFiles.allocatedBytes(template.memory()));
        } finally {
            driver.destroy(id);
            Processes.run(List.of("rm", "-rf", "--", staging.toString()), Duration.ofMinutes(1), null);
        }
    }

    /** The volume must match the memory: checkpoints and flushes everything before the guest is stopped. */
    private static void checkpointAndSync(Connection admin) throws SQLException {
        try (Statement s = admin.createStatement()) {
            s.execute("CHECKPOINT");
            s.execute("COPY (SELECT 1) TO PROGRAM 'sync'");
        }
    }
}
