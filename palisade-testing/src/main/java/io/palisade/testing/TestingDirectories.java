package io.palisade.testing;

import io.palisade.host.ServiceUser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where tests put real servers' files: under the repository's {@code target/} (git-ignored), in paths the unprivileged
 * service user can reach. The PostgreSQL binaries cache is shared by every test of a build.
 */
public final class TestingDirectories {
    /** The work directories this JVM created, for {@link #endProcessesNamingWorkDirs()}. */
    private static final Set<String> CREATED = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(
                new Thread(TestingDirectories::endProcessesNamingWorkDirs, "testing-work-dirs-sweep"));
    }

    private TestingDirectories() {}

    /**
     * At the exit of a test or bench JVM (Ctrl-C on {@code mvn} or {@code bench/run} included): the PostgreSQL servers
     * and QEMU processes palisade starts run in sessions of their own, out of the terminal's reach, so every process
     * whose command line names a work directory of this JVM gets SIGQUIT (PostgreSQL's immediate shutdown), then
     * SIGKILL after 5 s. After a run whose fixtures all closed, there is none.
     */
    private static void endProcessesNamingWorkDirs() {
        List<Long> left = processesNaming(CREATED);
        left.forEach(pid -> io.palisade.host.Processes.signal(pid, "QUIT"));
        for (long pid : left) {
            if (!io.palisade.host.Processes.awaitExit(pid, Duration.ofSeconds(5))) {
                io.palisade.host.Processes.signal(pid, "KILL");
            }
        }
    }

    private static List<Long> processesNaming(Set<String> dirs) {
        long self = ProcessHandle.current().pid();
        return ProcessHandle.allProcesses().map(ProcessHandle::pid).filter(pid -> pid != self).filter(pid -> {
            try {
                String cmdline = new String(Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline")),
                        java.nio.charset.StandardCharsets.UTF_8);
                return dirs.stream().anyMatch(dir -> cmdline.contains(dir + "/") || cmdline.contains(dir + "\0")
                        || cmdline.endsWith(dir));
            } catch (IOException e) {
                return false; // gone
            }
        }).toList();
    }

    public static Path repoDir() {
        String repo = System.getProperty("palisade.repo.dir");
        if (repo != null) {
            return Path.of(repo).toAbsolutePath();
        }
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null && !Files.exists(dir.resolve("bin/palisade"))) {
            dir = dir.getParent();
        }
        return dir == null ? Path.of("").toAbsolutePath() : dir;
    }

    /**
     * The tenant schema corpus ({@code shared/corpus/tenant-schema.sql} beside the repository, as in CI): a tenant's
     * schema exercising every object kind, for tests of anything that must reproduce a tenant faithfully.
     */
    public static Path tenantSchemaCorpus() {
        return repoDir().resolveSibling("shared").resolve("corpus/tenant-schema.sql");
    }

    /** Shared cache for PostgreSQL binaries and templates across the whole build. */
    public static Path cacheDir() {
        return mkdirs(repoDir().resolve("target/test-cache"));
    }

    /** A fresh, empty directory for one fixture; the caller deletes it. */
    public static Path newWorkDir(String prefix) {
        try {
            Path base = mkdirs(repoDir().resolve("target/test-work"));
            // short names: Unix socket paths under here are limited to ~107 bytes
            Path dir = null;
            for (int attempt = 0; dir == null; attempt++) {
                Path candidate = base.resolve(prefix + "-" + Long.toString(
                        java.util.concurrent.ThreadLocalRandom.current().nextLong(36L * 36 * 36 * 36 * 36 * 36), 36));
                try {
                    dir = Files.createDirectory(candidate);
                } catch (java.nio.file.FileAlreadyExistsException e) {
                    if (attempt > 100) {
                        throw e;
                    }
                }
            }
            Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
            CREATED.add(dir.toString());
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static ServiceUser serviceUser() {
        return ServiceUser.resolve(ServiceUser.DEFAULT_NAME);
    }

    public static void deleteRecursively(Path dir) {
        if (dir != null && Files.exists(dir)) {
            io.palisade.host.Processes.run(List.of("rm", "-rf", dir.toString()), Duration.ofMinutes(1), null);
        }
    }

    private static Path mkdirs(Path dir) {
        try {
            Files.createDirectories(dir);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
