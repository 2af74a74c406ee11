package io.palisade.host;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Reads and writes files in directories that a tenant (or the service user a tenant's server runs as) can write,
 * without ever following a link there: palisade runs as root, so a
 * {@code postgres.log -> /var/lib/palisade/secrets/master.key} planted by a tenant must not make root read or write the
 * link's target.
 *
 * <ul>
 *   <li>Reads accept only a regular file with one hard link, reached without a symbolic link as the last component
 *       ({@code O_NOFOLLOW}); anything else is refused with an error that names the file. The checks are made on the
 *       descriptor that is then read, and the open never blocks ({@link NoFollowOpen}): a FIFO put in place of a
 *       plain file is refused, not waited on. (The link count has a window; {@link NoFollowOpen} says which.)
 *   <li>Writes create a new file exclusively ({@code O_CREAT|O_EXCL}, which never follows a link) and rename it over
 *       the old name, so a link in its place is replaced, not followed.
 * </ul>
 *
 * The directories above the file must not be writable by the tenant (they are palisade's). Thread-safe (stateless).
 */
public final class SafeFiles {
    private SafeFiles() {}

    /**
     * The last {@code lines} lines of the last {@code maxBytes} bytes of a file; empty if there is no file. Fails if
     * the name is a link, a hard link to another file, or not a regular file.
     */
    public static List<String> tailLines(Path file, int lines, long maxBytes) {
        Optional<byte[]> bytes = readTail(file, maxBytes);
        if (bytes.isEmpty()) {
            return List.of();
        }
        List<String> all = List.of(new String(bytes.get(), StandardCharsets.UTF_8).split("\n"));
        return new ArrayList<>(all.subList(Math.max(0, all.size() - lines), all.size()));
    }

    /** A small file's content stripped (a pid or port file), or empty if there is none; refuses links as above. */
    public static Optional<String> readSmall(Path file, int maxBytes) {
        return readTail(file, maxBytes).map(bytes -> new String(bytes, StandardCharsets.UTF_8).strip());
    }

    /** The last {@code maxBytes} bytes of a file, or empty if there is no file; refuses links as above. */
    public static Optional<byte[]> readTail(Path file, long maxBytes) {
        return read(file, maxBytes, false);
    }

    /**
     * The first {@code maxBytes} bytes of a file, or empty if there is no file; refuses links as above. For files read
     * the way their writer reads them, from the start (PostgreSQL checks the pid at the head of {@code postmaster.pid}).
     */
    public static Optional<byte[]> readHead(Path file, long maxBytes) {
        return read(file, maxBytes, true);
    }

    private static Optional<byte[]> read(Path file, long maxBytes, boolean head) {
        if (maxBytes < 0) {
            throw new IllegalArgumentException("maxBytes is negative: " + maxBytes);
        }
        try {
            Optional<NoFollowOpen> opened = NoFollowOpen.open(file);
            if (opened.isEmpty()) {
                return Optional.empty();
            }
            try (NoFollowOpen open = opened.get()) {
                long size = open.size();
                long start = head ? 0 : Math.max(0, size - maxBytes);
                // up to the size seen at open; a file that grows meanwhile is cut there
                return Optional.of(open.read(start, (int) Math.min(Math.min(size - start, maxBytes),
                        Integer.MAX_VALUE - 8)));
            }
        } catch (IOException e) {
            throw refused(file, e.getMessage());
        }
    }

    /**
     * Writes {@code content} to {@code file} through a new file renamed over it, owned by {@code owner} if given; a
     * link or anything else at {@code file} is replaced.
     */
    public static void replace(Path file, String content, Optional<ServiceUser> owner) {
        Path tmp = file.resolveSibling(file.getFileName() + ".palisade-" + Long.toHexString(System.nanoTime()));
        try {
            Files.writeString(tmp, content, StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE);
            owner.ifPresent(user -> user.chown(tmp));
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Makes {@code file} a regular file not reached through a link: an existing regular file with one link is kept, a
     * link or anything else in its place is removed (never followed) and an empty file created exclusively.
     */
    public static void ensurePlainFile(Path file) {
        try {
            if (Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
                if (isPlainFile(file)) {
                    return;
                }
                Files.delete(file);
            }
            Files.createFile(file);
        } catch (FileAlreadyExistsException e) {
            throw refused(file, "something was created in its place meanwhile");
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot create " + file + ": " + e.getMessage(), e);
        }
    }

    /** True if the name is a regular file (not a link) with exactly one hard link. */
    public static boolean isPlainFile(Path file) {
        try {
            BasicFileAttributes attributes =
                    Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!attributes.isRegularFile()) {
                return false;
            }
            return ((Number) Files.getAttribute(file, "unix:nlink", LinkOption.NOFOLLOW_LINKS)).intValue() == 1;
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    private static PalisadeException refused(Path file, String why) {
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "refusing to use " + file + ": " + why
                + "; palisade never follows links inside instance directories. Remove it (the database's own files "
                + "are not affected) and retry");
    }

    private static void deleteQuietly(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException ignored) {
            // best effort
        }
    }
}
