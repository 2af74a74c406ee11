package io.palisade.host;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The unprivileged OS user that tenant servers (and the embedded store) run as. When palisade runs as root it creates the
 * user if missing and drops to it with {@code setpriv}; otherwise everything runs as the current user. Immutable.
 */
public final class ServiceUser {
    private static final Logger log = LoggerFactory.getLogger(ServiceUser.class);
    public static final String DEFAULT_NAME = "palisade";
    private static final Path PASSWD = Path.of("/etc/passwd");
    private static final boolean FILES_FIRST = filesFirst(Path.of("/etc/nsswitch.conf"));

    private final String name;
    private final int uid;
    private final int gid;
    private final boolean dropPrivileges;

    private ServiceUser(String name, int uid, int gid, boolean dropPrivileges) {
        this.name = name;
        this.uid = uid;
        this.gid = gid;
        this.dropPrivileges = dropPrivileges;
    }

    public static ServiceUser resolve(String name) {
        int euid = currentUid();
        if (euid != 0) {
            return new ServiceUser(System.getProperty("user.name"), euid, currentGid(), false);
        }
        Optional<ServiceUser> local = local(name);
        if (local.isPresent()) {
            return local.get();
        }
        if (!Processes.run(List.of("id", "-u", name), Duration.ofSeconds(5), null).ok()) {
            log.info("creating system user '{}' for tenant servers", name);
            Processes.check(
                    List.of("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", name),
                    Duration.ofSeconds(30));
        }
        int uid = Integer.parseInt(Processes.check(List.of("id", "-u", name), Duration.ofSeconds(5)).strip());
        int gid = Integer.parseInt(Processes.check(List.of("id", "-g", name), Duration.ofSeconds(5)).strip());
        return new ServiceUser(name, uid, gid, true);
    }

    /** The existing user with this uid (running as root), if there is one; never creates one. */
    public static Optional<ServiceUser> named(int uid) {
        if (currentUid() != 0) {
            return Optional.empty();
        }
        Processes.Result name = Processes.run(List.of("id", "-nu", Integer.toString(uid)), Duration.ofSeconds(5), null);
        Processes.Result gid = Processes.run(List.of("id", "-g", Integer.toString(uid)), Duration.ofSeconds(5), null);
        if (!name.ok() || !gid.ok()) {
            return Optional.empty();
        }
        try {
            return Optional.of(new ServiceUser(name.output().strip(), uid, Integer.parseInt(gid.output().strip()), true));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    public String name() {
        return name;
    }

    public int uid() {
        return uid;
    }

    public int gid() {
        return gid;
    }

    public boolean dropsPrivileges() {
        return dropPrivileges;
    }

    /** The command prefixed so that it runs as this user. */
    public List<String> wrap(List<String> command) {
        if (!dropPrivileges) {
            return command;
        }
        List<String> wrapped = new ArrayList<>(List.of(
                "setpriv", "--reuid=" + uid, "--regid=" + gid, "--clear-groups", "--inh-caps=-all", "--"));
        wrapped.addAll(command);
        return wrapped;
    }

    /** Gives a file tree to this user (no-op when not running as root). */
    public void chown(Path path) {
        if (dropPrivileges) {
            Processes.check(List.of("chown", "-R", uid + ":" + gid, path.toString()), Duration.ofMinutes(2));
        }
    }

    /**
     * Fails with a clear message if this user cannot reach {@code dir} (for example a data directory under /root, which
     * is mode 700).
     */
    public void checkCanTraverse(Path dir) {
        if (!dropPrivileges) {
            return;
        }
        Path absolute = dir.toAbsolutePath().normalize();
        for (Path p = absolute.getParent(); p != null; p = p.getParent()) {
            try {
                var mode = Files.getPosixFilePermissions(p);
                if (!mode.contains(java.nio.file.attribute.PosixFilePermission.OTHERS_EXECUTE)) {
                    int owner = (Integer) Files.getAttribute(p, "unix:uid");
                    if (owner != uid) {
                        throw new PalisadeException(
                                ErrorCode.INVALID_REQUEST,
                                "the OS user '" + name + "' that runs tenant servers cannot reach " + absolute
                                        + ": " + p + " is not searchable by others; choose a --data-dir under a "
                                        + "world-searchable path (e.g. /var/lib/palisade or the repo's .palisade) or "
                                        + "run 'chmod o+x " + p + "'");
                    }
                }
            } catch (IOException e) {
                throw new PalisadeException(ErrorCode.INTERNAL, "cannot inspect " + p + ": " + e.getMessage(), e);
            }
        }
    }

    /**
     * The user {@code name} as {@code /etc/passwd} has it (where {@code useradd} puts the users palisade creates), read
     * without starting a process: every QEMU and tenant server start resolves its user, and three {@code id} calls
     * took ~20 ms of each. Empty (ask {@code id}) when the file has no such line, when a line is not plain
     * {@code name:x:uid:gid}, or when {@code /etc/nsswitch.conf} does not consult {@code files} first for passwd: then
     * another source could answer {@code -runas} and {@code setpriv} by name differently from this file.
     */
    static Optional<ServiceUser> local(String name) {
        return FILES_FIRST ? local(name, PASSWD) : Optional.empty();
    }

    static Optional<ServiceUser> local(String name, Path passwd) {
        if (name.isEmpty() || !name.chars().allMatch(c -> c > ' ' && c < 127 && c != ':')) {
            return Optional.empty();
        }
        List<String[]> entries;
        try {
            entries = passwdEntries(passwd);
        } catch (IOException e) {
            return Optional.empty();
        }
        for (String[] fields : entries) {
            if (fields.length >= 4 && fields[0].equals(name)) {
                // the first line of a name is the one glibc's files source returns
                Optional<Integer> uid = id(fields[2]);
                Optional<Integer> gid = id(fields[3]);
                return uid.isPresent() && gid.isPresent()
                        ? Optional.of(new ServiceUser(name, uid.get(), gid.get(), true))
                        : Optional.empty();
            }
        }
        return Optional.empty();
    }

    /**
     * The lines of a passwd file split into their fields, read as glibc reads it: bytes as they are (ISO-8859-1, since
     * a host user's gecos may hold any), and only {@code \n} ends a line (a lone CR in a field starts no entry).
     */
    static List<String[]> passwdEntries(Path passwd) throws IOException {
        List<String[]> entries = new ArrayList<>();
        for (String line : Files.readString(passwd, StandardCharsets.ISO_8859_1).split("\n")) {
            entries.add(line.split(":", -1));
        }
        return entries;
    }

    /** A uid or gid as plain decimal digits, 0 to 2^31 - 1 (no sign: -1 means "unchanged" to set*id). */
    private static Optional<Integer> id(String field) {
        if (field.isEmpty() || field.length() > 10 || !field.chars().allMatch(c -> c >= '0' && c <= '9')) {
            return Optional.empty();
        }
        long value = Long.parseLong(field);
        return value > Integer.MAX_VALUE ? Optional.empty() : Optional.of((int) value);
    }

    /** Whether {@code nsswitch.conf}'s passwd line names {@code files} as its first source. */
    static boolean filesFirst(Path nsswitch) {
        try {
            for (String line : Files.readAllLines(nsswitch, StandardCharsets.ISO_8859_1)) {
                String stripped = line.strip();
                if (stripped.startsWith("passwd:")) {
                    String[] sources = stripped.substring("passwd:".length()).strip().split("\\s+");
                    return sources[0].equals("files");
                }
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    public static int currentUid() {
        try {
            return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot read /proc/self", e);
        }
    }

    private static int currentGid() {
        try {
            return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:gid");
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot read /proc/self", e);
        }
    }

    @Override
    public String toString() {
        return name + "(" + uid + ":" + gid + ")";
    }
}
