package io.palisade.agent;

import static java.util.Objects.requireNonNull;

import io.palisade.host.LoopVolumes;
import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The files of one {@code process} instance and who may touch them:
 * <pre>
 * instances/process/&lt;id&gt;/          root (or the service user when palisade is not root), 0711 / 0700
 *     volume.img                    root 0600: the capped ext4 volume, sized by the plan's disk_mb
 *     data/                         its mount point = PGDATA, the tenant server's user, 0700
 *         pg_wal -&gt; ../wal
 *     wal.img                       root 0600: the WAL's own capped volume ({@link #walMb})
 *     wal/                          its mount point, the tenant server's user, 0700
 *     postgres.log                  the tenant server's user, 0600
 *     port                          the last port, for stable URLs
 * </pre>
 * WAL has a volume of its own so that a full data volume is an ordinary error (53100, "could not extend file") after
 * which the tenant can still delete and drop: PostgreSQL stops with PANIC when it cannot write WAL, so WAL must never
 * compete with table data for space. An instance made where volumes are not supported (or by an older palisade) has no
 * {@code volume.img}: its data directory lives on the host's file system, uncapped. Thread-safe (immutable); the caller
 * serialises calls for one id.
 */
final class ProcessInstanceFiles {
    static final String IMAGE = "volume.img";
    static final String WAL_IMAGE = "wal.img";
    private static final long MIB = 1024L * 1024;

    private final Path instancesDir;
    private final ServiceUser user;
    private final LoopVolumes volumes;

    ProcessInstanceFiles(Path instancesDir, ServiceUser user, LoopVolumes volumes) {
        this.instancesDir = requireNonNull(instancesDir, "instancesDir is null");
        this.user = requireNonNull(user, "user is null");
        this.volumes = requireNonNull(volumes, "volumes is null");
    }

    LoopVolumes volumes() {
        return volumes;
    }

    Path dir(String id) {
        return instancesDir.resolve(id);
    }

    Path data(String id) {
        return dir(id).resolve("data");
    }

    Path image(String id) {
        return dir(id).resolve(IMAGE);
    }

    Path wal(String id) {
        return dir(id).resolve("wal");
    }

    Path walImage(String id) {
        return dir(id).resolve(WAL_IMAGE);
    }

    /** The {@code max_wal_size} of a capped instance: a quarter of its disk, between 32 MiB and 1 GiB. */
    static int maxWalMb(int diskMb) {
        return Math.max(32, Math.min(1024, diskMb / 4));
    }

    /**
     * The size of a capped instance's WAL volume: what two checkpoint distances leave behind, plus what a backup's
     * replication slot may hold back (palisade-backup's {@code max_slot_wal_keep_size}: a quarter of the disk, between
     * 64 MiB and 1 GiB), plus four segments of slack.
     */
    static int walMb(int diskMb) {
        return 2 * maxWalMb(diskMb) + Math.max(64, Math.min(1024, diskMb / 4)) + 64;
    }

    Path log(String id) {
        return dir(id).resolve("postgres.log");
    }

    /** Whether this instance's data lives on its own capped volume. */
    boolean capped(String id) {
        return Files.isRegularFile(image(id));
    }

    /**
     * Makes a new instance's directory and, where supported, its capped volumes (data: {@code diskMb} MiB, WAL:
     * {@link #walMb}, or more for the WAL a restore replays) mounted; then copies {@code source} (a data directory) into
     * them. Fails with the sizes if the source does not fit; the caller then destroys the instance.
     */
    void create(String id, int diskMb, Path source, Duration copyTimeout) throws IOException {
        Path dir = dir(id);
        Files.createDirectories(dir);
        Processes.check(List.of("chmod", user.dropsPrivileges() ? "711" : "700", dir.toString()),
                Duration.ofSeconds(10));
        if (!volumes.supported()) {
            Processes.check(List.of("cp", "-a", "--reflink=auto", source.toString(), data(id).toString()), copyTimeout);
            return;
        }
        Path sourceWal = source.resolve("pg_wal");
        long walBytes = Math.max(0, directoryBytes(sourceWal));
        long sourceBytes = directoryBytes(source) - walBytes;
        // a restore stages the WAL it replays, which can be more than the volume's usual size: room for it, once
        int walSizeMb = (int) Math.max(walMb(diskMb), walBytes * 11 / 10 / MIB + 64);
        LoopVolumes.create(image(id), diskMb, data(id), user);
        try {
            LoopVolumes.create(walImage(id), walSizeMb, wal(id), user);
        } catch (IOException | RuntimeException e) {
            LoopVolumes.unmount(data(id));
            throw e;
        }
        long usable = Files.getFileStore(data(id)).getUsableSpace();
        if (sourceBytes > usable) {
            throw new PalisadeException(ErrorCode.INVALID_REQUEST, "the data directory of " + id + " needs "
                    + sourceBytes / MIB + " MiB but a volume of the plan's disk_mb " + diskMb + " holds "
                    + usable / MIB + " MiB; choose a plan with a larger disk_mb");
        }
        List<String> copy = new ArrayList<>(List.of("cp", "-a", "--reflink=auto"));
        try (Stream<Path> entries = Files.list(source)) {
            entries.filter(entry -> !entry.getFileName().toString().equals("pg_wal"))
                    .forEach(entry -> copy.add(entry.toString()));
        }
        copy.add(data(id) + "/");
        Processes.check(copy, copyTimeout);
        if (Files.exists(sourceWal)) {
            Processes.check(List.of("cp", "-a", "--reflink=auto", sourceWal + "/.", wal(id) + "/"), copyTimeout);
        }
        Files.createDirectories(wal(id).resolve("archive_status"));
        // relative, so that a renamed instance directory keeps it
        Files.createSymbolicLink(data(id).resolve("pg_wal"), Path.of("..", "wal"));
    }

    /** Mounts a capped instance's volume (a no-op if it is mounted or the instance has none). */
    void mount(String id) {
        if (capped(id)) {
            LoopVolumes.mount(image(id), data(id));
            LoopVolumes.mount(walImage(id), wal(id));
        }
    }

    /** Unmounts a capped instance's volume once its server has stopped (a no-op if nothing is mounted). */
    void unmount(String id) {
        LoopVolumes.unmount(data(id));
        LoopVolumes.unmount(wal(id));
    }

    /**
     * Gives the data directory to the tenant server's user with mode 0700 and the log 0600 (created if missing); the
     * instance directory stays the control plane's. Called before every start, so older instances get these modes too.
     */
    void secure(String id, boolean recursive) throws IOException {
        Path log = log(id);
        if (Files.isSymbolicLink(log)) {
            Files.delete(log);
        }
        if (!Files.exists(log)) {
            Files.createFile(log, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        }
        if (user.dropsPrivileges()) {
            Processes.check(List.of("chown", "--no-dereference", user.uid() + ":" + user.gid(), log.toString()),
                    Duration.ofSeconds(10));
            if (recursive) {
                user.chown(data(id));
                if (capped(id)) {
                    user.chown(wal(id));
                }
            }
        }
        if (capped(id)) {
            Processes.check(List.of("chmod", "700", wal(id).toString()), Duration.ofSeconds(10));
        }
        Processes.check(List.of("chmod", "600", log.toString()), Duration.ofSeconds(10));
        Processes.check(List.of("chmod", "700", data(id).toString()), Duration.ofSeconds(10));
        if (user.dropsPrivileges()) {
            // older instances gave the whole directory to the service user; only the data and the log are its
            Processes.check(List.of("chown", "--no-dereference", "0:0", dir(id).toString()), Duration.ofSeconds(10));
        }
        Processes.check(List.of("chmod", user.dropsPrivileges() ? "711" : "700", dir(id).toString()),
                Duration.ofSeconds(10));
    }

    /** The bytes of the files under a directory, or -1 if it does not exist or cannot be read. */
    static long directoryBytes(Path dir) {
        if (!Files.exists(dir)) {
            return -1;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).mapToLong(p -> {
                try {
                    return Files.size(p);
                } catch (IOException e) {
                    return 0;
                }
            }).sum();
        } catch (IOException | java.io.UncheckedIOException e) {
            return -1;
        }
    }
}
