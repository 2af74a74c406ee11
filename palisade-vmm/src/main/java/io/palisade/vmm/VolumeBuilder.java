package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Processes;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.PostgresVersion;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * Turns a PostgreSQL data directory prepared on the host (a restored base backup with its recovery settings and WAL,
 * or any cleanly stopped cluster of the right major) into a guest data volume without mounting anything: the volume's
 * tree ({@code /data} = the directory, {@code /log} empty) is staged, handed to the guest's postgres uid/gid with mode
 * 700, and written with {@code mke2fs -d}. The server and client-authentication configs become the image's (a VM's
 * {@code postgresql.conf} and {@code pg_hba.conf} are the platform's, whichever rung the data came from; the
 * platform-only {@code postgresql.auto.conf} with the recovery settings is kept); the {@code pg_hba.conf} the first
 * boot uses is the caller's, the image's is staged beside it as {@code pg_hba.conf.palisade} (see
 * {@link ManagementHandover}). Thread-safe (stateless but for a cache of the image's config files).
 */
final class VolumeBuilder {
    /** The image's pg_hba.conf, staged next to the first-boot one and moved into place by the handover. */
    static final String STAGED_HBA = "pg_hba.conf.palisade";
    private static final long MIB = 1024L * 1024;
    /** Head room on top of the data: free space for WAL and new rows, ext4 metadata and its 5 % root reserve. */
    private static final double GROWTH = 1.3;
    private static final long FIXED_HEADROOM = 64 * MIB;
    private static final Duration LONG_COMMAND = Duration.ofHours(1);
    private static final Map<Path, Map<String, byte[]>> TEMPLATE_CONFIGS = new ConcurrentHashMap<>();

    /** What {@link #build} made. */
    record Result(long dataBytes, long volumeBytes, long millis) {}

    private VolumeBuilder() {}

    /**
     * Checks that {@code dir} is a data directory the guest can run: {@code PG_VERSION} of the spec's major,
     * {@code global/pg_control}, a real {@code pg_wal} directory, no tablespaces (their links point at host paths), no
     * {@code standby.signal} (the VM would never leave recovery). Throws INVALID_REQUEST saying what is wrong.
     */
    static void check(Path dir, PostgresVersion version) {
        requireNonNull(dir, "dir is null");
        requireNonNull(version, "version is null");
        String what = "the restored data directory " + dir;
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw PalisadeException.invalid(what + " does not exist or is not a directory");
        }
        Path pgVersion = dir.resolve("PG_VERSION");
        String major;
        try {
            major = Files.readString(pgVersion, StandardCharsets.US_ASCII).strip();
        } catch (IOException e) {
            throw PalisadeException.invalid(
                    what + " has no readable PG_VERSION: it is not a PostgreSQL data directory");
        }
        if (!major.equals(version.major())) {
            throw PalisadeException.invalid(what + " is PostgreSQL " + major + ", the database is to run "
                    + version.major() + "; restore into a database of version " + major);
        }
        if (!Files.isRegularFile(dir.resolve("global/pg_control"), LinkOption.NOFOLLOW_LINKS)) {
            throw PalisadeException.invalid(what + " has no global/pg_control: the base backup is incomplete (was its "
                    + "tar extracted completely?)");
        }
        if (!Files.isDirectory(dir.resolve("pg_wal"), LinkOption.NOFOLLOW_LINKS)) {
            throw PalisadeException.invalid(what + " has no pg_wal directory (a symbolic link is not allowed: the "
                    + "guest sees only its own volume)");
        }
        try (Stream<Path> tablespaces = Files.exists(dir.resolve("pg_tblspc"))
                ? Files.list(dir.resolve("pg_tblspc"))
                : Stream.empty()) {
            if (tablespaces.findAny().isPresent()) {
                throw PalisadeException.invalid(what + " uses tablespaces (pg_tblspc is not empty), which the vm rung "
                        + "does not support");
            }
        } catch (IOException e) {
            throw PalisadeException.invalid(what + ": cannot list pg_tblspc: " + e.getMessage());
        }
        if (Files.exists(dir.resolve("standby.signal"))) {
            throw PalisadeException.invalid(what + " holds standby.signal: a restore must end recovery "
                    + "(recovery.signal with recovery_target_action = 'promote')");
        }
    }

    /**
     * Builds {@code volume} from {@code dataDirectory}, which is consumed (moved into {@code stage}, a fresh directory
     * on the instances file system that the caller removes on failure). The volume is at least the plan's disk and at
     * least the data × 1.3 + 64 MiB, sparse, mode 600, owned by root (QEMU opens it before dropping privileges).
     */
    static Result build(GuestImage image, PostgresVersion version, Path dataDirectory, Path stage, Path volume,
            int planDiskMb, String firstBootHba) throws IOException {
        requireNonNull(firstBootHba, "firstBootHba is null");
        long start = System.nanoTime();
        Map<String, byte[]> configs = templateConfigs(image, version);
        Files.createDirectories(stage);
        Path data = stage.resolve("data");
        Path logDir = stage.resolve("log");
        move(dataDirectory, data);
        Files.createDirectories(logDir);
        // left by the source's server: a stale postmaster.pid could name a live pid in the guest
        Files.deleteIfExists(data.resolve("postmaster.pid"));
        Files.deleteIfExists(data.resolve("postmaster.opts"));
        Files.write(data.resolve("postgresql.conf"), configs.get("postgresql.conf"));
        Files.write(data.resolve(STAGED_HBA), configs.get("pg_hba.conf"));
        Files.writeString(data.resolve("pg_hba.conf"), firstBootHba, StandardCharsets.UTF_8);
        String owner = image.postgresUid() + ":" + image.postgresGid();
        Processes.check(List.of("chown", "-R", "--no-dereference", owner, data.toString(), logDir.toString()),
                LONG_COMMAND);
        Processes.check(List.of("chmod", "-R", "u+rwX", data.toString()), LONG_COMMAND);
        Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rwx------"));
        Files.setPosixFilePermissions(logDir, PosixFilePermissions.fromString("rwx------"));
        Files.setPosixFilePermissions(stage, PosixFilePermissions.fromString("rwxr-xr-x"));
        long dataBytes = treeBytes(data);
        long wanted = Math.max(planDiskMb * MIB, (long) Math.ceil(dataBytes * GROWTH) + FIXED_HEADROOM);
        long volumeBytes = (wanted + MIB - 1) / MIB * MIB;
        Files.deleteIfExists(volume);
        Files.createFile(volume, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Processes.check(List.of("truncate", "-s", Long.toString(volumeBytes), volume.toString()),
                Duration.ofSeconds(30));
        Processes.check(List.of("mkfs.ext4", "-q", "-F", "-L", "pgdata", "-E", "root_owner=0:0", "-d",
                stage.toString(), volume.toString()), LONG_COMMAND);
        Processes.check(List.of("rm", "-rf", "--", stage.toString()), LONG_COMMAND);
        return new Result(dataBytes, volumeBytes, (System.nanoTime() - start) / 1_000_000);
    }

    /** Renames when both are on one file system; else {@code mv} copies and removes. */
    private static void move(Path from, Path to) {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            Processes.check(List.of("mv", "-T", "--", from.toString(), to.toString()), LONG_COMMAND);
        }
    }

    private static long treeBytes(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)).mapToLong(p -> {
                try {
                    return Files.size(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }).sum();
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /** {@code postgresql.conf} and {@code pg_hba.conf} of the image's template volume, read with debugfs once. */
    static Map<String, byte[]> templateConfigs(GuestImage image, PostgresVersion version) throws IOException {
        // the real key directory: "current" moves to a new key (other configs) when the image is rebuilt
        Path template = image.templateVolume(version).toRealPath();
        Map<String, byte[]> cached = TEMPLATE_CONFIGS.get(template);
        if (cached != null) {
            return cached;
        }
        Path scratch = Files.createTempDirectory("palisade-template-conf");
        try {
            Map<String, byte[]> configs = new java.util.HashMap<>();
            for (String name : List.of("postgresql.conf", "pg_hba.conf")) {
                Path out = scratch.resolve(name);
                // read-only (catastrophic) mode: never writes to the image
                Processes.Result result = Processes.run(List.of("debugfs", "-c", "-R",
                        "dump /data/" + name + " " + out, template.toString()), Duration.ofSeconds(30), null);
                if (!result.ok() || !Files.isRegularFile(out) || Files.size(out) == 0) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot read /data/" + name + " from the "
                            + "guest image's template volume " + template + ": " + Processes.tail(result.output(), 3)
                            + "; " + GuestImage.BUILD_HINT);
                }
                configs.put(name, Files.readAllBytes(out));
            }
            Map<String, byte[]> result = Map.copyOf(configs);
            TEMPLATE_CONFIGS.put(template, result);
            return result;
        } finally {
            Processes.run(List.of("rm", "-rf", "--", scratch.toString()), Duration.ofSeconds(30), null);
        }
    }
}
