package io.palisade.host;

import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Finds the postmaster an earlier run of palisade left running on a data directory, for {@link PostgresServer#adopt}.
 * {@code postmaster.pid} is the tenant's to write, so the pid it names is believed only if {@code /proc} says that
 * process is exactly the server palisade would start: the real binary ({@code exe}), the very command line, the
 * server's own user (every uid, and the gids when it runs as a user of its own), palisade's namespaces (a tenant's
 * private mount namespace could show it other data under the same path), the data directory as its working directory,
 * neither stopped nor traced, inside the instance's cgroup, and holding the socket that listens at the server's TCP
 * address and port. The last one ties the pid to the server that answers there: only a postmaster keeps its listening sockets (its
 * children close them) and no other process can listen on the port while it does, so an idle look-alike a tenant
 * started with the same command line (a decoy) is refused. Stateless.
 */
final class RunningPostmaster {
    private static final List<String> NAMESPACES = List.of("mnt", "pid", "net", "user", "ipc");
    /** The state column of a listening socket in {@code /proc/net/tcp}. */
    private static final String TCP_LISTEN = "0A";

    private RunningPostmaster() {}

    /** The process to take over, bound to its start time; empty if anything does not match. */
    static Optional<ProcessHandle> find(PostgresServer.Options options, List<String> command) {
        OptionalLong named = pidInFile(options.dataDir());
        if (named.isEmpty()) {
            return Optional.empty();
        }
        long pid = named.getAsLong();
        Optional<ProcessHandle> handle = ProcessHandle.of(pid).filter(ProcessHandle::isAlive);
        if (handle.isEmpty()) {
            return Optional.empty();
        }
        Path proc = Path.of("/proc", Long.toString(pid));
        boolean genuine = commandLine(pid).equals(command)
                && sameFile(proc.resolve("exe"), options.binaries().bin("postgres"))
                && sameFile(proc.resolve("cwd"), options.dataDir())
                && ownedBy(proc, options.user())
                && NAMESPACES.stream().allMatch(ns -> sameLink(proc.resolve("ns").resolve(ns),
                        Path.of("/proc/self/ns").resolve(ns)))
                && options.cgroup().map(group -> group.holds(pid)).orElse(true)
                && holdsListeningSocket(proc, options.listenAddress(), options.port());
        // checked last, and the handle again: the pid must not have been reused while /proc was read
        return genuine && handle.get().isAlive() ? handle : Optional.empty();
    }

    /**
     * The pid on the first line of the data directory's {@code postmaster.pid}, read from the file's head (where
     * PostgreSQL reads its own pid when it checks the file) without following links; empty when the file is missing,
     * unreadable or malformed. Nothing more of the file is read: it is the tenant's to write.
     */
    static OptionalLong pidInFile(Path dataDir) {
        try {
            String first = SafeFiles.readHead(dataDir.resolve("postmaster.pid"), 64)
                    .map(bytes -> new String(bytes, StandardCharsets.UTF_8)).orElse("").lines()
                    .findFirst().orElse("").strip();
            long pid = Long.parseLong(first);
            return pid > 1 ? OptionalLong.of(pid) : OptionalLong.empty();
        } catch (PalisadeException | NumberFormatException e) {
            return OptionalLong.empty();
        }
    }

    /**
     * Whether the process at {@code proc} has a descriptor of a TCP socket listening on {@code port} at one of the
     * addresses of {@code listenAddresses} (PostgreSQL's {@code listen_addresses}: IP literals, or {@code *}), as
     * {@code /proc/net/tcp} and {@code tcp6} of palisade's network namespace (the process's too) list it. The address
     * must match exactly: another address with the same port (127.0.0.2, ::1) can be bound by anyone beside the server.
     */
    static boolean holdsListeningSocket(Path proc, String listenAddresses, int port) {
        Set<String> listening = listeningSocketInodes(listenAddresses, port);
        if (listening.isEmpty()) {
            return false;
        }
        try (DirectoryStream<Path> descriptors = Files.newDirectoryStream(proc.resolve("fd"))) {
            for (Path descriptor : descriptors) {
                String target;
                try {
                    target = Files.readSymbolicLink(descriptor).toString();
                } catch (IOException e) {
                    continue; // closed while listed
                }
                if (target.startsWith("socket:[") && target.endsWith("]")
                        && listening.contains(target.substring("socket:[".length(), target.length() - 1))) {
                    return true;
                }
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    /**
     * The inodes of the TCP sockets in state LISTEN on {@code port} at one of {@code listenAddresses}; empty if an
     * address is not an IP literal or {@code *} (a host name could mean anything: no take-over then).
     */
    static Set<String> listeningSocketInodes(String listenAddresses, int port) {
        Set<String> local = new HashSet<>();
        String hexPort = String.format(Locale.ROOT, "%04X", port);
        for (String address : listenAddresses.split(",")) {
            String literal = address.strip();
            if (literal.equals("*")) {
                local.add("00000000:" + hexPort);
                local.add("0".repeat(32) + ":" + hexPort);
                continue;
            }
            byte[] ip;
            try {
                ip = InetAddress.ofLiteral(literal).getAddress();
            } catch (IllegalArgumentException e) {
                return Set.of();
            }
            local.add(procNetAddress(ip) + ":" + hexPort);
            if (ip.length == 4) {
                // the same address bound through an IPv6 socket (::ffff:a.b.c.d), as Java and others do
                byte[] mapped = new byte[16];
                mapped[10] = (byte) 0xff;
                mapped[11] = (byte) 0xff;
                System.arraycopy(ip, 0, mapped, 12, 4);
                local.add(procNetAddress(mapped) + ":" + hexPort);
            }
        }
        Set<String> inodes = new HashSet<>();
        for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...; streamed:
            // a tenant can fill the table with connections in TIME_WAIT
            try (Stream<String> lines = Files.lines(Path.of(table))) {
                lines.skip(1).map(line -> line.strip().split("\\s+"))
                        .filter(fields -> fields.length > 9 && fields[3].equals(TCP_LISTEN) && local.contains(fields[1]))
                        .forEach(fields -> inodes.add(fields[9]));
            } catch (IOException | UncheckedIOException e) {
                // no IPv6
            }
        }
        return inodes;
    }

    /** An address as {@code /proc/net/tcp*} prints it: each 32-bit word in the host's byte order. */
    static String procNetAddress(byte[] address) {
        boolean little = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;
        StringBuilder hex = new StringBuilder();
        for (int word = 0; word < address.length; word += 4) {
            for (int i = 0; i < 4; i++) {
                hex.append(String.format(Locale.ROOT, "%02X", address[word + (little ? 3 - i : i)]));
            }
        }
        return hex.toString();
    }

    /** The arguments of {@code pid} ({@code /proc/<pid>/cmdline}); empty if it cannot be read. */
    static List<String> commandLine(long pid) {
        try {
            byte[] bytes = Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline"));
            return List.of(new String(bytes, StandardCharsets.UTF_8).split("\0"));
        } catch (IOException e) {
            return List.of();
        }
    }

    /** Whether the link {@code link} (a {@code /proc} entry) resolves to the same file as {@code path}. */
    static boolean sameFile(Path link, Path path) {
        try {
            return Files.readSymbolicLink(link).equals(path.toRealPath());
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    private static boolean sameLink(Path link, Path other) {
        try {
            return Files.readSymbolicLink(link).equals(Files.readSymbolicLink(other));
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    /**
     * From {@code /proc/<pid>/status}: every uid (real, effective, saved, filesystem) is the server's user's (the gids
     * too when it is a user of its own), the process is neither stopped nor traced.
     */
    private static boolean ownedBy(Path proc, ServiceUser user) {
        List<String> status;
        try {
            status = Files.readAllLines(proc.resolve("status"));
        } catch (IOException e) {
            return false;
        }
        int uid = user.dropsPrivileges() ? user.uid() : ServiceUser.currentUid();
        boolean ids = allEqual(field(status, "Uid:"), uid)
                && (!user.dropsPrivileges() || allEqual(field(status, "Gid:"), user.gid()));
        String state = field(status, "State:");
        return ids && !state.startsWith("T") && !state.startsWith("t") && field(status, "TracerPid:").equals("0");
    }

    private static String field(List<String> status, String name) {
        return status.stream().filter(line -> line.startsWith(name)).map(line -> line.substring(name.length()).strip())
                .findFirst().orElse("");
    }

    private static boolean allEqual(String ids, int expected) {
        String[] parts = ids.split("\\s+");
        if (parts.length != 4) {
            return false;
        }
        for (String part : parts) {
            if (!part.equals(Integer.toString(expected))) {
                return false;
            }
        }
        return true;
    }
}
