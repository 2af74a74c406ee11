package io.palisade.host;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One OS user per tenant instance, so that code running in one tenant's server is a uid of its own: it cannot read,
 * signal or trace another tenant's server, the metadata store (which has its own user) or palisade. The users are
 * system users named {@code <prefix>-<instance id>} (tenant servers) or {@code <prefix>-<kind>-<instance id>} (another
 * kind of instance, e.g. {@code vm}) with uids from {@link #UID_MIN}–{@link #UID_MAX} (clear of login users and the
 * usual subordinate-uid ranges), each with a group of its own; created on first use and removed with the instance. Two
 * kinds never share a user: a move runs a database's source and target side by side under the same instance id, and
 * removing one (which kills whatever still runs as its uid) must not touch the other. When palisade does not run as
 * root every instance runs as the current user, as {@link ServiceUser} does.
 * Thread-safe: changes to the user database are serialised across all instances of this class in the JVM (the
 * system's own lock on /etc/passwd is not waited for).
 */
public final class TenantUsers {
    private static final Logger log = LoggerFactory.getLogger(TenantUsers.class);
    public static final int UID_MIN = 200_000;
    public static final int UID_MAX = 299_999;
    private static final Pattern INSTANCE_ID = Pattern.compile("[a-z0-9][a-z0-9-]{0,22}");
    private static final Pattern KIND = Pattern.compile("[a-z]{1,8}");
    /** The longest user name useradd accepts. */
    private static final int MAX_NAME = 32;
    private static final Object USER_DATABASE = new Object();
    private static final Path PASSWD = Path.of("/etc/passwd");
    /** The highest tenant uid ever given on this host (root-only, shared by every palisade here). */
    static final Path HIGH_WATER = Path.of("/var/lib/palisade/tenant-uid-high-water");
    /** World-writable places a uid may leave files in outside its instance. */
    private static final List<String> SHARED_WRITABLE = List.of("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue");
    private static final Path PROTECTED_HARDLINKS = Path.of("/proc/sys/fs/protected_hardlinks");
    private static final Path FUSE_CONF = Path.of("/etc/fuse.conf");
    private static final List<Path> FUSERMOUNT = List.of(Path.of("/usr/bin/fusermount"),
            Path.of("/usr/bin/fusermount3"), Path.of("/bin/fusermount"), Path.of("/bin/fusermount3"));
    private static final AtomicBoolean HOST_CHECKED = new AtomicBoolean();

    private final ServiceUser fallback;
    private final String prefix;

    /**
     * @param fallback the user everything runs as when palisade is not root (its name is also the prefix of the tenant
     *     users' names)
     */
    public TenantUsers(ServiceUser fallback) {
        this.fallback = requireNonNull(fallback, "fallback is null");
        this.prefix = fallback.name();
    }

    /**
     * Users of one other kind of instance, named {@code <fallback>-<kind>-<instance id>}.
     *
     * @param kind lower-case letters naming the kind (e.g. {@code vm})
     */
    public TenantUsers(ServiceUser fallback, String kind) {
        this.fallback = requireNonNull(fallback, "fallback is null");
        if (!KIND.matcher(requireNonNull(kind, "kind is null")).matches()) {
            throw new IllegalArgumentException("not a kind of instance users: " + kind);
        }
        this.prefix = fallback.name() + "-" + kind;
    }

    /** Whether instances really get users of their own (palisade runs as root). */
    public boolean separate() {
        return fallback.dropsPrivileges();
    }

    /** The OS user name of an instance (whether or not it exists). */
    public String nameOf(String instanceId) {
        String id = instanceId.toLowerCase(Locale.ROOT);
        if (!INSTANCE_ID.matcher(id).matches()) {
            throw new IllegalArgumentException("not an instance id that can name an OS user: " + instanceId);
        }
        String name = prefix + "-" + id;
        if (name.length() > MAX_NAME) {
            throw new IllegalArgumentException("the OS user name " + name + " of instance " + instanceId + " is longer"
                    + " than " + MAX_NAME + " characters; use a shorter service user name");
        }
        return name;
    }

    /** The user of {@code instanceId}, created if it does not exist yet. */
    public ServiceUser forInstance(String instanceId) {
        if (!separate()) {
            return fallback;
        }
        if (HOST_CHECKED.compareAndSet(false, true)) {
            warnAboutHost();
        }
        synchronized (USER_DATABASE) {
            return create(instanceId);
        }
    }

    /** Warns once about host settings that weaken what separate users give (see docs/architecture.md, SafeFiles). */
    private static void warnAboutHost() {
        if (!hardLinksProtected(PROTECTED_HARDLINKS)) {
            log.warn("fs.protected_hardlinks is not 1 on this host: a tenant's server can hard-link files it can reach"
                    + " but does not own into its own directory, and palisade's guard against reading such a file"
                    + " there has a window (docs/architecture.md, SafeFiles); set it with:"
                    + " sysctl -w fs.protected_hardlinks=1");
        }
        if (FUSERMOUNT.stream().anyMatch(Files::exists) && fuseAllowsOthers(FUSE_CONF)) {
            log.warn("{} enables user_allow_other and fusermount is installed: a tenant's server can mount a FUSE file"
                    + " system over its own directory that root may enter, and make palisade's reads there wait on it;"
                    + " remove user_allow_other (or fusermount) on a host that runs tenants", FUSE_CONF);
        }
    }

    /**
     * Whether {@code fuse.conf} lets users mount FUSE file systems that other users, root included, may enter
     * ({@code user_allow_other} on a line of its own, not commented out).
     */
    static boolean fuseAllowsOthers(Path fuseConf) {
        try {
            return Files.readAllLines(fuseConf, StandardCharsets.UTF_8).stream()
                    .map(line -> line.replaceFirst("#.*", "").strip())
                    .anyMatch("user_allow_other"::equals);
        } catch (IOException e) {
            return false;
        }
    }

    /** Whether the kernel lets unprivileged users hard-link only files they own or may read and write. */
    static boolean hardLinksProtected(Path sysctl) {
        try {
            return Files.readString(sysctl, StandardCharsets.US_ASCII).strip().equals("1");
        } catch (IOException e) {
            return false;
        }
    }

    private ServiceUser create(String instanceId) {
        String name = nameOf(instanceId);
        Optional<ServiceUser> known = ServiceUser.local(name);
        if (known.isEmpty() && !exists(name)) {
            int uid = nextUid();
            Processes.Result created = Processes.run(List.of("useradd", "--system", "--user-group", "--no-create-home",
                    "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "--uid", Integer.toString(uid),
                    "-K", "SYS_GID_MIN=" + UID_MIN, "-K", "SYS_GID_MAX=" + UID_MAX, name), Duration.ofSeconds(30), null);
            if (!created.ok() && !exists(name)) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot create the OS user '" + name
                        + "' for instance " + instanceId + ": " + created.output().strip()
                        + " (are uids " + UID_MIN + "–" + UID_MAX + " exhausted?)");
            }
            log.debug("created OS user {} for instance {}", name, instanceId);
        }
        ServiceUser user = known.orElseGet(() -> ServiceUser.resolve(name));
        if (user.uid() < UID_MIN || user.uid() > UID_MAX) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the OS user '" + name + "' has uid " + user.uid()
                    + ", outside palisade's tenant range " + UID_MIN + "–" + UID_MAX
                    + "; remove it (userdel " + name + ") so that palisade can create it anew");
        }
        return user;
    }

    /**
     * Removes the user of {@code instanceId} (and its group) once nothing runs as it; idempotent. Its files must be gone
     * or given away first: a later instance may get the same uid.
     */
    public void remove(String instanceId) {
        if (!separate()) {
            return;
        }
        String name;
        try {
            name = nameOf(instanceId);
        } catch (IllegalArgumentException e) {
            return; // a name that cannot be a user was never created
        }
        synchronized (USER_DATABASE) {
            delete(name);
        }
    }

    private void delete(String name) {
        if (!exists(name)) {
            return;
        }
        int uid = ServiceUser.resolve(name).uid();
        if (prefix.equals(fallback.name()) && Processes.run(List.of("pgrep", "-U", Integer.toString(uid), "-f",
                "qemu-system"), Duration.ofSeconds(5), null).ok()) {
            // a VM started by an earlier palisade ran as the tenant server's user: a move leaves the two side by side
            log.warn("OS user {} still runs a microVM (started by an earlier palisade); it is left in place", name);
            return;
        }
        endEverythingOf(uid);
        Processes.Result removed = Processes.run(List.of("userdel", name), Duration.ofSeconds(30), null);
        if (!removed.ok() && exists(name)) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot remove the OS user '" + name + "': "
                    + removed.output().strip());
        }
    }

    /**
     * Kills whatever still runs as {@code uid} (a process the tenant's server left behind would outlive its data) and
     * removes what it left in the world-writable places a uid can write outside its instance, so that nothing of it
     * remains when its user goes. SysV IPC objects are not swept.
     */
    private static void endEverythingOf(int uid) {
        String id = Integer.toString(uid);
        for (int attempt = 0; attempt < 50
                && Processes.run(List.of("pgrep", "-U", id), Duration.ofSeconds(5), null).ok(); attempt++) {
            Processes.run(List.of("pkill", "-KILL", "-U", id), Duration.ofSeconds(5), null);
            Processes.sleep(Duration.ofMillis(100));
        }
        for (String dir : SHARED_WRITABLE) {
            if (Files.isDirectory(Path.of(dir))) {
                Processes.run(List.of("find", dir, "-xdev", "-mindepth", "1", "-uid", id, "-delete"),
                        Duration.ofMinutes(1), null);
            }
        }
    }

    /**
     * A uid no tenant user had before on this host (a reused uid would inherit what an old tenant left in shared
     * places): the first free one past the highest ever given, kept in {@link #HIGH_WATER} under a file lock
     * (palisades on one host share it). Once the range is used up, the lowest free uid in it.
     */
    private int nextUid() {
        try {
            Files.createDirectories(HIGH_WATER.getParent());
            try (FileChannel channel = FileChannel.open(HIGH_WATER, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE); FileLock ignored = channel.lock()) {
                ByteBuffer buffer = ByteBuffer.allocate(32);
                channel.read(buffer, 0);
                String text = new String(buffer.array(), 0, buffer.position(), StandardCharsets.US_ASCII).strip();
                int highest = text.isEmpty() ? UID_MIN - 1 : Integer.parseInt(text);
                java.util.Set<Integer> taken = takenUids();
                int next = highest + 1;
                while (taken.contains(next) && next <= UID_MAX) {
                    next++;
                }
                if (next > UID_MAX) {
                    next = UID_MIN;
                    while (taken.contains(next) && next <= UID_MAX) {
                        next++;
                    }
                    if (next > UID_MAX) {
                        throw new PalisadeException(ErrorCode.CAPACITY_EXHAUSTED, "every tenant uid " + UID_MIN + "–"
                                + UID_MAX + " is in use on this host");
                    }
                    log.warn("tenant uids up to {} have all been given once; reusing free uid {}", UID_MAX, next);
                }
                channel.truncate(0);
                channel.write(ByteBuffer.wrap(Integer.toString(next).getBytes(StandardCharsets.US_ASCII)), 0);
                channel.force(true);
                return next;
            }
        } catch (IOException | NumberFormatException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot allocate a tenant uid through " + HIGH_WATER + ": "
                    + e.getMessage(), e);
        }
    }

    /** Uids in the tenant range that some user (of any palisade) has now. */
    private static java.util.Set<Integer> takenUids() throws IOException {
        java.util.Set<Integer> taken = new java.util.HashSet<>();
        for (String[] fields : ServiceUser.passwdEntries(PASSWD)) {
            if (fields.length > 2 && uidInRange(fields[2])) {
                taken.add(Integer.parseInt(fields[2]));
            }
        }
        return taken;
    }

    /** Names of the tenant users that exist on this host (for the reconciler's orphan check). */
    public List<String> existing() {
        if (!separate()) {
            return List.of();
        }
        try {
            return ServiceUser.passwdEntries(PASSWD).stream()
                    .filter(f -> f.length > 2 && f[0].startsWith(prefix + "-") && uidInRange(f[2]))
                    .map(f -> f[0])
                    .toList();
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot read /etc/passwd: " + e.getMessage(), e);
        }
    }

    private static boolean uidInRange(String uid) {
        try {
            int value = Integer.parseInt(uid);
            return value >= UID_MIN && value <= UID_MAX;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    private static boolean exists(String name) {
        return ServiceUser.local(name).isPresent()
                || Processes.run(List.of("id", "-u", name), Duration.ofSeconds(5), null).ok();
    }
}
