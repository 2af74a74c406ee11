package io.palisade.server;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The exclusive lock a palisade process holds on its data directory ({@code <data-dir>/palisade.lock}) while it serves
 * it or prepares its vm template: a second {@code palisade serve} on the same directory would otherwise stop the first
 * one's metadata store as a leftover and take its VMs for orphans. The lock is a POSIX record lock ({@code fcntl}),
 * which the kernel drops when the process dies (SIGKILL included), and also when the process closes any descriptor of
 * the file: so this JVM opens the file only while it does not hold it already (a set of the held directories, by
 * device and inode, so a symlink or a bind mount of one is the same), and a second holder in the same JVM is refused
 * before it opens anything. Thread-safe.
 */
final class DataDirLock implements AutoCloseable {
    static final String FILE = "palisade.lock";
    /** The data directories this JVM holds the lock of, by their file key (device and inode). */
    private static final Set<Object> HELD = ConcurrentHashMap.newKeySet();

    private final Object dir;
    private final FileChannel channel;
    private final FileLock lock;

    private DataDirLock(Object dir, FileChannel channel, FileLock lock) {
        this.dir = dir;
        this.channel = channel;
        this.lock = lock;
    }

    /** Takes the lock of {@code dataDir} (created if missing), or throws {@code CONFLICT} naming the directory. */
    static DataDirLock acquire(Path dataDir) {
        Path file = dataDir.resolve(FILE);
        Object real;
        try {
            Files.createDirectories(dataDir);
            real = Files.readAttributes(dataDir, BasicFileAttributes.class).fileKey();
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot create the data directory " + dataDir + ": "
                    + e.getMessage(), e);
        }
        if (!HELD.add(real)) {
            throw held(dataDir, file);
        }
        FileChannel channel = null;
        try {
            channel = FileChannel.open(file, Set.of(StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    LinkOption.NOFOLLOW_LINKS), PosixFilePermissions.asFileAttribute(
                            PosixFilePermissions.fromString("rw-------")));
            FileLock lock = channel.tryLock();
            if (lock != null) {
                return new DataDirLock(real, channel, lock);
            }
        } catch (OverlappingFileLockException e) {
            // this JVM holds it through a path whose key differs (cannot happen with device and inode): keep the
            // descriptor open, since closing it would drop that lock
            HELD.remove(real);
            throw held(dataDir, file);
        } catch (IOException e) {
            release(real, channel);
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot lock the data directory " + dataDir + ": "
                    + e.getMessage(), e);
        }
        release(real, channel);
        throw held(dataDir, file);
    }

    private static PalisadeException held(Path dataDir, Path file) {
        return new PalisadeException(ErrorCode.CONFLICT, "another palisade is running on the data directory " + dataDir
                + " (it holds " + file + "); stop it first, or give this one its own server.data-dir");
    }

    private static void release(Object real, FileChannel channel) {
        try {
            if (channel != null) {
                channel.close();
            }
        } catch (IOException ignored) {
            // nothing was locked through it
        } finally {
            HELD.remove(real);
        }
    }

    @Override
    public void close() throws IOException {
        try {
            lock.release();
            channel.close();
        } finally {
            HELD.remove(dir);
        }
    }
}
