package io.palisade.vmm;

import io.palisade.host.Processes;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * File work of the vm rung on the host: private files, syncs, sparse copies of volumes (grown to the plan's disk), log
 * rotation, allocated sizes. Stateless static helpers; thread-safe.
 */
final class VmFiles {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);
    static final long MIB = 1024L * 1024;

    private VmFiles() {}

    /** Removes the saved suspend state of an instance (published, partial, consumed, and its mode file). */
    static void discardSavedState(InstancePaths paths) {
        deleteQuietly(paths.stateFile());
        deleteQuietly(paths.partialStateFile());
        deleteQuietly(paths.consumedStateFile());
        deleteQuietly(paths.fullStateFile());
        deleteQuietly(paths.stateModeFile());
    }

    static void createPrivateFile(Path file) {
        try {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot create " + file + ": " + e.getMessage(), e);
        }
    }

    static void forceFile(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.force(true);
        }
    }

    /**
     * Moves a (sparse) file: a rename on one file system; across file systems a sparse copy then a delete, since
     * {@link Files#move} would copy it block by block and write out every hole.
     */
    static void moveSparse(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            copySparse(from, to);
            Files.delete(from);
        }
    }

    static void copySparse(Path from, Path to) throws IOException {
        Processes.check(List.of("cp", "--sparse=always", "--reflink=auto", from.toString(), to.toString()),
                Duration.ofMinutes(5));
        Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rw-------"));
    }

    /** A sparse copy of a template volume, grown (never shrunk) to {@code diskMb} before its first boot. */
    static void createVolume(Path template, Path volume, int diskMb) throws IOException {
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

    static long allocatedBytes(Path file) {
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

    static String sha256Hex(String text) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static void writePrivate(Path file, String content, boolean sync) throws IOException {
        Files.deleteIfExists(file);
        Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        if (sync) {
            Files.writeString(file, content, StandardCharsets.UTF_8, StandardOpenOption.WRITE, StandardOpenOption.SYNC);
        } else {
            Files.writeString(file, content, StandardCharsets.UTF_8, StandardOpenOption.WRITE);
        }
    }

    /** Keeps the previous boot's log as {@code previous}. */
    static void rotate(Path current, Path previous) {
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
}
