package io.palisade.backup.store;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileVisitResult;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * An {@link ArchiveStore} in a local directory: one file per key, directories per key segment. Only the owner can read
 * it (directories 700, files 600). A put writes a temporary file in the target directory, fsyncs it, renames it over
 * the key atomically and fsyncs the directory, so a crash leaves either the old object or the new one, never a torn
 * one (a leftover temporary file starts with {@code .} and is never listed). Deletes remove directories left empty.
 * Thread-safe: concurrent puts of the same key leave one of them whole.
 */
public final class LocalArchiveStore implements ArchiveStore {
    private static final Set<PosixFilePermission> DIR_MODE = PosixFilePermissions.fromString("rwx------");
    private static final Set<PosixFilePermission> FILE_MODE = PosixFilePermissions.fromString("rw-------");
    private static final FileAttribute<Set<PosixFilePermission>> DIR_ATTR =
            PosixFilePermissions.asFileAttribute(DIR_MODE);
    private static final FileAttribute<Set<PosixFilePermission>> FILE_ATTR =
            PosixFilePermissions.asFileAttribute(FILE_MODE);
    private static final int PUT_ATTEMPTS = 5;

    private final Path root;

    /** Opens (creating it, mode 700) the store rooted at {@code root}. */
    public LocalArchiveStore(Path root) {
        this.root = requireNonNull(root, "root is null").toAbsolutePath().normalize();
        try {
            if (!Files.isDirectory(this.root)) {
                Files.createDirectories(this.root.getParent());
                createDirectory(this.root);
            }
            Files.setPosixFilePermissions(this.root, DIR_MODE);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot create the backup directory " + this.root
                    + ": " + e + "; check that the path is writable by palisade's user, or configure another one", e);
        }
    }

    public Path root() {
        return root;
    }

    @Override
    public void put(String key, byte[] bytes) {
        ArchiveKeys.checkKey(key);
        requireNonNull(bytes, "bytes is null");
        Path file = root.resolve(key);
        for (int attempt = 1; ; attempt++) {
            try {
                write(file, bytes);
                return;
            } catch (NoSuchFileException e) {
                // a concurrent delete removed a directory we had just made: make it again
                if (attempt == PUT_ATTEMPTS) {
                    throw failure("put", key, e);
                }
            } catch (IOException e) {
                throw failure("put", key, e);
            }
        }
    }

    private void write(Path file, byte[] bytes) throws IOException {
        Path dir = file.getParent();
        makeDirectories(dir);
        if (Files.isDirectory(file, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException("a directory of the same name holds other objects (keys under "
                    + root.relativize(file) + "/)");
        }
        // short: a key's segment may already be near the file system's 255-byte name limit
        Path tmp = dir.resolve(".put-" + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
        try {
            try (FileChannel channel = FileChannel.open(tmp, Set.of(StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE), FILE_ATTR)) {
                ByteBuffer buffer = ByteBuffer.wrap(bytes);
                while (buffer.hasRemaining()) {
                    channel.write(buffer);
                }
                channel.force(true);
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            tmp = null;
            fsync(dir);
        } finally {
            if (tmp != null) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** Creates the missing directories from the root down to {@code dir}, each mode 700 and each made durable. */
    private void makeDirectories(Path dir) throws IOException {
        if (Files.isDirectory(dir)) {
            return;
        }
        List<Path> missing = new ArrayList<>();
        for (Path d = dir; !d.equals(root) && !Files.isDirectory(d); d = d.getParent()) {
            missing.addFirst(d);
        }
        for (Path d : missing) {
            try {
                createDirectory(d);
                fsync(d.getParent());
            } catch (FileAlreadyExistsException e) {
                if (!Files.isDirectory(d)) {
                    throw new IOException("an object of the same name is in the way of directory "
                            + root.relativize(d) + "/", e);
                }
            }
        }
    }

    private static void createDirectory(Path dir) throws IOException {
        Files.createDirectory(dir, DIR_ATTR);
        // the creation mode is filtered by the umask: set it exactly
        Files.setPosixFilePermissions(dir, DIR_MODE);
    }

    private static void fsync(Path dir) throws IOException {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    @Override
    public byte[] get(String key) {
        ArchiveKeys.checkKey(key);
        Path file = root.resolve(key);
        try {
            if (Files.isDirectory(file)) {
                throw missing(key);
            }
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw missing(key);
        } catch (IOException e) {
            throw failure("read", key, e);
        }
    }

    private PalisadeException missing(String key) {
        return PalisadeException.notFound("archived object " + key + " does not exist in " + describe()
                + ": it was never written, was pruned, or the archive was moved");
    }

    @Override
    public List<StoredObject> list(String prefix) {
        ArchiveKeys.checkPrefix(prefix);
        // start at the deepest directory the prefix names whole, then filter on the partial last segment
        int slash = prefix.lastIndexOf('/');
        Path start = slash < 0 ? root : root.resolve(prefix.substring(0, slash));
        if (!Files.isDirectory(start)) {
            return List.of();
        }
        List<StoredObject> out = new ArrayList<>();
        try {
            Files.walkFileTree(start, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attributes) {
                    if (dir.equals(start)) {
                        return FileVisitResult.CONTINUE;
                    }
                    String under = root.relativize(dir) + "/";
                    boolean relevant = under.startsWith(prefix) || prefix.startsWith(under);
                    return relevant && !hidden(dir) ? FileVisitResult.CONTINUE : FileVisitResult.SKIP_SUBTREE;
                }

                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) {
                    String key = root.relativize(file).toString();
                    if (attributes.isRegularFile() && !hidden(file) && key.startsWith(prefix)) {
                        out.add(new StoredObject(key, attributes.size(), attributes.lastModifiedTime().toInstant()));
                    }
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                    if (e instanceof NoSuchFileException) {
                        return FileVisitResult.CONTINUE; // deleted while we walked: not listed
                    }
                    throw e;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
                    if (e != null && !(e instanceof NoSuchFileException)) {
                        throw e;
                    }
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot list archived objects under '" + prefix
                    + "' in " + describe() + ": " + e, e);
        }
        out.sort(Comparator.comparing(StoredObject::key));
        return List.copyOf(out);
    }

    /** Temporary files of puts in flight or interrupted by a crash. */
    private static boolean hidden(Path path) {
        return path.getFileName().toString().startsWith(".");
    }

    @Override
    public void delete(String key) {
        ArchiveKeys.checkKey(key);
        Path file = root.resolve(key);
        try {
            if (!Files.isDirectory(file, LinkOption.NOFOLLOW_LINKS) && Files.deleteIfExists(file)) {
                pruneEmptyParents(file.getParent());
            }
        } catch (IOException e) {
            throw failure("delete", key, e);
        }
    }

    @Override
    public void deletePrefix(String prefix) {
        ArchiveKeys.checkPrefix(prefix);
        if (prefix.isEmpty()) {
            throw PalisadeException.invalid("refusing to delete every object in " + describe()
                    + ": name a prefix such as archives/<id>/");
        }
        for (StoredObject object : list(prefix)) {
            delete(object.key());
        }
        // what the listing skips: temporary files a crash left behind, and the directories that are now empty
        try {
            int slash = prefix.lastIndexOf('/');
            Path dir = slash < 0 ? root : root.resolve(prefix.substring(0, slash));
            if (prefix.endsWith("/") && Files.isDirectory(dir)) {
                pruneTree(dir);
            }
            pruneEmptyParents(dir);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot remove leftover files under '" + prefix
                    + "' in " + describe() + ": " + e.getMessage(), e);
        }
    }

    /** Deletes temporary files under {@code dir} and every directory there that is then empty, deepest first. */
    private static void pruneTree(Path dir) throws IOException {
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) throws IOException {
                if (hidden(file)) {
                    Files.deleteIfExists(file);
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                if (e instanceof NoSuchFileException) {
                    return FileVisitResult.CONTINUE;
                }
                throw e;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path visited, IOException e) throws IOException {
                if (e != null && !(e instanceof NoSuchFileException)) {
                    throw e;
                }
                try {
                    Files.deleteIfExists(visited);
                } catch (DirectoryNotEmptyException notEmpty) {
                    // an object written meanwhile keeps its directory
                }
                return FileVisitResult.CONTINUE;
            }
        });
    }

    /** Removes {@code dir} and its parents below the root while they are empty; stops at the first non-empty one. */
    private void pruneEmptyParents(Path dir) throws IOException {
        for (Path d = dir; d != null && d.startsWith(root) && !d.equals(root); d = d.getParent()) {
            try {
                Files.delete(d);
            } catch (NoSuchFileException e) {
                // already gone: look at its parent
            } catch (DirectoryNotEmptyException e) {
                return;
            }
        }
    }

    private PalisadeException failure(String action, String key, IOException e) {
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot " + action + " archived object " + key + " in "
                + describe() + ": " + e + "; check the disk (space, permissions) under " + root, e);
    }

    @Override
    public String describe() {
        return "local " + root;
    }

    @Override
    public String toString() {
        return describe();
    }
}
