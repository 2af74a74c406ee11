package io.palisade.testing;

import io.palisade.host.ServiceUser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Where tests put real servers' files: under the repository's {@code target/} (git-ignored), in paths the unprivileged
 * service user can reach. The PostgreSQL binaries cache is shared by every test of a build.
 */
public final class TestingDirectories {
    private TestingDirectories() {}

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
