package io.palisade.host;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A file opened for reading the way Java's file API cannot: {@code open(2)} with {@code O_NOFOLLOW | O_NONBLOCK}
 * through libc (the foreign-function API), then checked through the descriptor it got ({@code statx} with
 * {@code AT_EMPTY_PATH}), so that what is checked is what is read.
 *
 * <p>Why: a name in a directory a tenant can write may change between a check by name and an open by name. Opened
 * without {@code O_NONBLOCK}, a FIFO put there meanwhile blocks the opening thread until somebody writes to it (for
 * ever); a hard link put there would be read although the check saw a plain file. Here the open itself refuses a
 * symbolic link ({@code ELOOP}), never blocks (a FIFO opens at once; a socket fails with {@code ENXIO}), and the
 * descriptor is refused unless it is a regular file with one link. Reads use {@code pread}, which ignores
 * {@code O_NONBLOCK} on regular files.
 *
 * <p>The link count is a weaker guard than the others: it is read once, on the descriptor, and a tenant that removes
 * its own extra name of a file between the open and that read gets past it (a check of the name after the open does
 * not close this either: the kernel drops the old file's link count before the name moves). What keeps a tenant from
 * linking somebody else's file into its directory at all is the kernel's {@code fs.protected_hardlinks} (1 by default
 * on Debian and most distributions; {@link TenantUsers} warns when it is off): an unprivileged user may hard-link only
 * files it owns or may both read and write.
 *
 * <p>Linux on x86-64 or AArch64 (the flag values differ between them); elsewhere every open fails with an
 * {@link IOException} saying so, so callers refuse rather than read unsafely. Not thread-safe; close it.
 */
final class NoFollowOpen implements AutoCloseable {
    private static final int O_RDONLY = 0;
    private static final int O_NONBLOCK = 0x800;
    private static final int O_CLOEXEC = 0x80000;
    private static final int AT_EMPTY_PATH = 0x1000;
    private static final int STATX_TYPE = 0x1;
    private static final int STATX_NLINK = 0x4;
    private static final int STATX_SIZE = 0x200;
    private static final int S_IFMT = 0xF000;
    private static final int S_IFREG = 0x8000;
    private static final int ENOENT = 2;
    private static final int EINTR = 4;
    private static final int ENXIO = 6;
    private static final int ELOOP = 40;

    /** {@code O_NOFOLLOW}, the one flag here whose value depends on the architecture; empty where it is not known. */
    private static final Optional<Integer> O_NOFOLLOW = switch (System.getProperty("os.arch")) {
        case "amd64", "x86_64" -> Optional.of(0x20000);
        case "aarch64" -> Optional.of(0x8000);
        default -> Optional.empty();
    };

    private static final StructLayout STATX = MemoryLayout.structLayout(
            ValueLayout.JAVA_INT.withName("stx_mask"),
            ValueLayout.JAVA_INT.withName("stx_blksize"),
            ValueLayout.JAVA_LONG.withName("stx_attributes"),
            ValueLayout.JAVA_INT.withName("stx_nlink"),
            ValueLayout.JAVA_INT.withName("stx_uid"),
            ValueLayout.JAVA_INT.withName("stx_gid"),
            ValueLayout.JAVA_SHORT.withName("stx_mode"),
            MemoryLayout.paddingLayout(2),
            ValueLayout.JAVA_LONG.withName("stx_ino"),
            ValueLayout.JAVA_LONG.withName("stx_size"),
            MemoryLayout.paddingLayout(256 - 48));
    private static final VarHandle STX_MASK = STATX.varHandle(MemoryLayout.PathElement.groupElement("stx_mask"));
    private static final VarHandle STX_NLINK = STATX.varHandle(MemoryLayout.PathElement.groupElement("stx_nlink"));
    private static final VarHandle STX_MODE = STATX.varHandle(MemoryLayout.PathElement.groupElement("stx_mode"));
    private static final VarHandle STX_SIZE = STATX.varHandle(MemoryLayout.PathElement.groupElement("stx_size"));

    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final int ENOTDIR = 20;
    /** The libc handles, or null if this JVM may not call native code (then every open is refused). */
    private static final Libc LIBC;
    private static final String LIBC_FAILURE;

    static {
        Libc libc = null;
        String failure = null;
        try {
            libc = new Libc();
        } catch (RuntimeException | LinkageError e) {
            failure = e.toString();
        }
        LIBC = libc;
        LIBC_FAILURE = failure;
    }

    private final int fd;
    private final long size;
    private boolean closed;

    private NoFollowOpen(int fd, long size) {
        this.fd = fd;
        this.size = size;
    }

    /**
     * Opens {@code file} for reading if it is a regular file with one link, reached without following a symbolic link
     * as its last component; empty if there is no such name (or a directory on its path is not one). Links in the
     * directories above it are followed: they must be palisade's, not the tenant's.
     *
     * @throws IOException naming why it was refused (a link, a FIFO, a socket, a directory, a hard link, another
     *     error of {@code open(2)}), or that this platform is not supported
     */
    static Optional<NoFollowOpen> open(Path file) throws IOException {
        int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC
                | O_NOFOLLOW.orElseThrow(() -> new IOException("no O_NOFOLLOW value known for architecture "
                        + System.getProperty("os.arch")));
        if (LIBC == null) {
            throw new IOException("this JVM may not call libc (" + LIBC_FAILURE + "); start it with"
                    + " --enable-native-access=ALL-UNNAMED, as bin/palisade does");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment path = arena.allocateFrom(file.toString());
            int fd;
            do {
                fd = (int) LIBC.open.invokeExact(state, path, flags, 0);
            } while (fd < 0 && errno(state) == EINTR);
            if (fd < 0) {
                int errno = errno(state);
                return switch (errno) {
                    case ENOENT, ENOTDIR -> Optional.empty();
                    case ELOOP -> throw new IOException("it is a symbolic link (or its path loops)");
                    case ENXIO -> throw new IOException("it is a socket");
                    default -> throw new IOException("open failed: " + LIBC.describe(errno));
                };
            }
            try {
                MemorySegment opened = statx(arena, state, fd, STATX_TYPE | STATX_NLINK | STATX_SIZE);
                int mode = Short.toUnsignedInt((short) STX_MODE.get(opened, 0L));
                if ((mode & S_IFMT) != S_IFREG) {
                    throw new IOException("it is not a regular file (a directory, FIFO or device)");
                }
                if ((int) STX_NLINK.get(opened, 0L) != 1) {
                    throw new IOException("it has more than one hard link");
                }
                NoFollowOpen result = new NoFollowOpen(fd, (long) STX_SIZE.get(opened, 0L));
                fd = -1;
                return Optional.of(result);
            } finally {
                if (fd >= 0) {
                    int ignored = (int) LIBC.close.invokeExact(fd);
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("libc call failed", e);
        }
    }

    /** The size the descriptor had when it was opened. */
    long size() {
        return size;
    }

    /**
     * Reads up to {@code length} bytes from {@code position} (fewer at the end of the file).
     *
     * @throws IOException if {@code pread} fails
     */
    byte[] read(long position, int length) throws IOException {
        if (position < 0 || length < 0) {
            throw new IllegalArgumentException("negative position or length: " + position + ", " + length);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment buffer = arena.allocate(Math.max(1, length));
            long done = 0;
            while (done < length) {
                long got = (long) LIBC.pread.invokeExact(state, fd, buffer.asSlice(done), length - done,
                        position + done);
                if (got < 0 && errno(state) == EINTR) {
                    continue;
                }
                if (got < 0) {
                    throw new IOException("read failed: " + LIBC.describe(errno(state)));
                }
                if (got == 0) {
                    break;
                }
                done += got;
            }
            return buffer.asSlice(0, done).toArray(ValueLayout.JAVA_BYTE);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("libc call failed", e);
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            try {
                int ignored = (int) LIBC.close.invokeExact(fd);
            } catch (Throwable e) {
                throw new IllegalStateException("libc close failed", e);
            }
        }
    }

    /** {@code statx} of an open descriptor, failing unless it reports everything in {@code mask}. */
    private static MemorySegment statx(Arena arena, MemorySegment state, int fd, int mask) throws Throwable {
        MemorySegment stat = arena.allocate(STATX);
        if ((int) LIBC.statx.invokeExact(state, fd, arena.allocateFrom(""), AT_EMPTY_PATH, mask, stat) != 0) {
            throw new IOException("statx failed: " + LIBC.describe(errno(state)));
        }
        if (((int) STX_MASK.get(stat, 0L) & mask) != mask) {
            throw new IOException("statx did not report the file's type, links and size");
        }
        return stat;
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /**
     * The libc functions used above, looked up once. Restricted methods of the foreign-function API: every JVM palisade
     * starts passes {@code --enable-native-access=ALL-UNNAMED} ({@code bin/jvm/base.args}, the tests' surefire
     * {@code argLine}), as Netty's native transport needs too.
     */
    @SuppressWarnings("restricted")
    private static final class Libc {
        final MethodHandle open;
        final MethodHandle statx;
        final MethodHandle pread;
        final MethodHandle close;
        final MethodHandle strerror;

        Libc() {
            Linker linker = Linker.nativeLinker();
            Linker.Option errno = Linker.Option.captureCallState("errno");
            open = linker.downcallHandle(symbol(linker, "open"), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
                    errno, Linker.Option.firstVariadicArg(2));
            statx = linker.downcallHandle(symbol(linker, "statx"), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS), errno);
            pread = linker.downcallHandle(symbol(linker, "pread"), FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), errno);
            close = linker.downcallHandle(symbol(linker, "close"),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            strerror = linker.downcallHandle(symbol(linker, "strerror"),
                    FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        }

        private static MemorySegment symbol(Linker linker, String name) {
            return linker.defaultLookup().find(name)
                    .orElseThrow(() -> new IllegalStateException("libc has no " + name));
        }

        /** {@code strerror(errno)} and the number, e.g. "Permission denied (errno 13)". */
        String describe(int errno) {
            try {
                MemorySegment text = (MemorySegment) strerror.invokeExact(errno);
                return text.reinterpret(256).getString(0) + " (errno " + errno + ")";
            } catch (Throwable e) {
                return "errno " + errno;
            }
        }
    }
}
