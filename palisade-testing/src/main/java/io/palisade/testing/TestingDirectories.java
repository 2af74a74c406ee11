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
     * whose command line names a work directory of this JVM is ended and named on stderr: a postmaster with SIGQUIT
     * (its immediate shutdown), anything else with SIGTERM, then whatever is left after 5 s in all with SIGKILL. After
     * a run whose fixtures all closed there is none.
     */
    private static void endProcessesNamingWorkDirs() {
        List<ProcessHandle> left = processesNaming(CREATED);
        for (ProcessHandle process : left) {
            try {
                String command = process.info().command().orElse("");
                System.err.println("ending pid " + process.pid() + " (" + command + "): it names a work directory of"
                        + " this test JVM, whose fixture did not close it");
                if (command.endsWith("/postgres")) {
                    io.palisade.host.Processes.signal(process.pid(), "QUIT");
                } else {
                    process.destroy();
                }
            } catch (RuntimeException e) {
                System.err.println("cannot signal pid " + process.pid() + ": " + e.getMessage());
            }
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        for (ProcessHandle process : left) {
            try {
                process.onExit().get(Math.max(0, deadline - System.nanoTime()), java.util.concurrent.TimeUnit.NANOSECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                process.destroyForcibly(); // the handle knows the start time: a reused pid is not signalled
            } catch (java.util.concurrent.ExecutionException e) {
                // gone
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static List<ProcessHandle> processesNaming(Set<String> dirs) {
        long self = ProcessHandle.current().pid();
        return ProcessHandle.allProcesses().filter(process -> process.pid() != self).filter(process -> {
            try {
                String cmdline = new String(Files.readAllBytes(Path.of("/proc", Long.toString(process.pid()),
                        "cmdline")), java.nio.charset.StandardCharsets.UTF_8);
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
