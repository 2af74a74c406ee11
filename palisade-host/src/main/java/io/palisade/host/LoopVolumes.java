package io.palisade.host;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Capped volumes for tenant data: a sparse ext4 image file, loop-mounted {@code nodev,nosuid,noexec} on a directory, so
 * that a tenant filling its data directory fills its own file system and never the host's. The image is root-owned
 * 0600; the file system's root directory belongs to the tenant's OS user, mode 0700, with no {@code lost+found} (a
 * root-owned directory there would break base backups).
 *
 * <p>{@link #probe} decides once whether this host can loop-mount at all (root, {@code /dev/loop-control}, a mount that
 * really works); when it cannot, {@link #supported()} is false with the reason, and callers run without a cap.
 * Thread-safe (immutable; mounting one directory from two threads at once is the caller's to avoid).
 */
public final class LoopVolumes {
    private static final Logger log = LoggerFactory.getLogger(LoopVolumes.class);
    private static final long MIB = 1024L * 1024;
    private static final String MOUNT_OPTIONS = "loop,nodev,nosuid,noexec";

    private final boolean supported;
    private final String reason;

    private LoopVolumes(boolean supported, String reason) {
        this.supported = supported;
        this.reason = requireNonNull(reason, "reason is null");
    }

    /** Volumes that are never used, with the reason (for hosts or tests that must not mount). */
    public static LoopVolumes unsupported(String reason) {
        return new LoopVolumes(false, reason);
    }

    /**
     * Finds out whether this host can give instances capped volumes: running as root, a loop control device, the tools,
     * and a trial mount of a small image under {@code scratch} that really succeeds.
     */
    public static LoopVolumes probe(Path scratch) {
        if (ServiceUser.currentUid() != 0) {
            return new LoopVolumes(false, "palisade does not run as root, so it cannot loop-mount volumes");
        }
        if (!Files.exists(Path.of("/dev/loop-control"))) {
            return new LoopVolumes(false, "this host has no /dev/loop-control (no loop devices, e.g. in a container)");
        }
        Path dir = scratch.resolve(".volume-probe-" + ProcessHandle.current().pid());
        Path image = dir.resolve("probe.img");
        Path mountPoint = dir.resolve("mnt");
        try {
            Files.createDirectories(mountPoint);
            create(image, 8, mountPoint, null);
            unmount(mountPoint);
            return new LoopVolumes(true, "per-instance ext4 images, loop-mounted " + MOUNT_OPTIONS);
        } catch (IOException | RuntimeException e) {
            return new LoopVolumes(false, "a trial loop mount failed: " + e.getMessage());
        } finally {
            if (isMounted(mountPoint)) {
                Processes.run(List.of("umount", "-l", mountPoint.toString()), Duration.ofSeconds(30), null);
            }
            Processes.run(List.of("rm", "-rf", dir.toString()), Duration.ofSeconds(30), null);
        }
    }

    /** Whether instances get capped volumes on this host. */
    public boolean supported() {
        return supported;
    }

    /** Why (or why not) instances get capped volumes. */
    public String reason() {
        return reason;
    }

    /**
     * Creates a sparse image of {@code sizeMb} MiB at {@code image} (which must not exist), formats it ext4 without
     * reserved blocks and mounts it on {@code mountPoint} (created if missing), whose root then belongs to
     * {@code owner} (the current user if null), mode 0700. On failure nothing of it stays mounted.
     */
    public static void create(Path image, int sizeMb, Path mountPoint, ServiceUser owner) throws IOException {
        if (sizeMb < 8) {
            throw new IllegalArgumentException("a volume needs at least 8 MiB, got " + sizeMb);
        }
        Files.createFile(image, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try (var file = new RandomAccessFile(image.toFile(), "rw")) {
            file.setLength(sizeMb * MIB);
        }
        String rootOwner = owner == null ? "0:0" : owner.uid() + ":" + owner.gid();
        // 4 KiB blocks and one inode per 16 KiB (an empty data directory has some 1300 files); the journal keeps it
        // consistent across a host crash
        Processes.check(List.of("mke2fs", "-t", "ext4", "-q", "-F", "-m", "0", "-b", "4096", "-i", "16384",
                "-E", "root_owner=" + rootOwner, "-L", "palisade", image.toString()), Duration.ofMinutes(2));
        mount(image, mountPoint);
        try {
            Files.deleteIfExists(mountPoint.resolve("lost+found"));
            Processes.check(List.of("chmod", "700", mountPoint.toString()), Duration.ofSeconds(10));
        } catch (IOException | RuntimeException e) {
            unmount(mountPoint);
            throw e;
        }
    }

    /**
     * Mounts an existing image on {@code mountPoint} unless something is mounted there already (a control plane that
     * restarted while its instances kept running). The kernel replays the journal of an image from a crashed host.
     */
    public static void mount(Path image, Path mountPoint) {
        if (isMounted(mountPoint)) {
            return;
        }
        if (!Files.isRegularFile(image)) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the volume image " + image + " is missing; the"
                    + " instance's data cannot be mounted (restore it from a backup or delete the database)");
        }
        try {
            Files.createDirectories(mountPoint);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot create the mount point " + mountPoint, e);
        }
        Processes.Result result = Processes.run(List.of("mount", "-t", "ext4", "-o", MOUNT_OPTIONS, image.toString(),
                mountPoint.toString()), Duration.ofMinutes(2), null);
        if (!result.ok()) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot mount the volume " + image + " on "
                    + mountPoint + ": " + Processes.tail(result.output(), 3) + "; check free loop devices (losetup -a)"
                    + " and the image (e2fsck -f " + image + ")");
        }
        log.debug("mounted {} on {}", image, mountPoint);
    }

    /**
     * Unmounts {@code mountPoint} if something is mounted there; waits for a moment if it is busy (a postmaster that is
     * still exiting), then detaches it lazily so that it goes away with its last user. Idempotent.
     */
    public static void unmount(Path mountPoint) {
        for (int attempt = 0; isMounted(mountPoint); attempt++) {
            Processes.Result result = Processes.run(List.of("umount", mountPoint.toString()), Duration.ofMinutes(1),
                    null);
            if (result.ok()) {
                return;
            }
            if (attempt >= 20) {
                log.warn("{} stays busy ({}); detaching it lazily", mountPoint, Processes.tail(result.output(), 1));
                Processes.check(List.of("umount", "-l", mountPoint.toString()), Duration.ofMinutes(1));
                return;
            }
            Processes.sleep(Duration.ofMillis(250));
        }
    }

    /** Whether a file system is mounted exactly on {@code mountPoint}, as this process's mount table says. */
    public static boolean isMounted(Path mountPoint) {
        String wanted = escape(mountPoint.toAbsolutePath().normalize().toString());
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"), StandardCharsets.UTF_8)) {
                String[] fields = line.split(" ");
                if (fields.length > 4 && fields[4].equals(wanted)) {
                    return true;
                }
            }
            return false;
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot read /proc/self/mountinfo", e);
        }
    }

    /** A path as mountinfo writes it: space, tab, newline and backslash as octal escapes. */
    static String escape(String path) {
        StringBuilder out = new StringBuilder(path.length());
        for (char c : path.toCharArray()) {
            switch (c) {
                case ' ' -> out.append("\\040");
                case '\t' -> out.append("\\011");
                case '\n' -> out.append("\\012");
                case '\\' -> out.append("\\134");
                default -> out.append(c);
            }
        }
        return out.toString();
    }
}
