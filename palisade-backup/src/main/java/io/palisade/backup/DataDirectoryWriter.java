package io.palisade.backup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HexFormat;
import java.util.List;
import java.util.function.LongConsumer;
import java.util.zip.CRC32C;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Turns a base backup's tar stream into a PostgreSQL data directory, checks it against PostgreSQL's backup manifest
 * (every file present, with its size and CRC-32C) and writes the settings a restore or fork needs. Refuses entries that
 * would land outside the directory and links. Stateless.
 */
final class DataDirectoryWriter {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private DataDirectoryWriter() {}

    /** Extracts the tar read from {@code tar} into {@code dir} (created, mode 700); returns the bytes extracted. */
    static long extract(InputStream tar, Path dir, LongConsumer progress) {
        long total = 0;
        try {
            Files.createDirectories(dir);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            Path root = dir.toAbsolutePath().normalize();
            TarArchiveInputStream in = new TarArchiveInputStream(tar);
            TarArchiveEntry entry;
            byte[] buffer = new byte[256 * 1024];
            while ((entry = in.getNextEntry()) != null) {
                Path target = root.resolve(entry.getName()).normalize();
                if (!target.startsWith(root)) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                            "base backup entry '" + entry.getName() + "' points outside the data directory");
                }
                if (entry.isSymbolicLink() || entry.isLink()) {
                    // pg_wal or pg_tblspc links: palisade never uses them, and they must never point the host anywhere
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "base backup entry '" + entry.getName()
                            + "' is a link to " + entry.getLinkName() + "; palisade restores only plain data directories");
                }
                if (entry.isDirectory()) {
                    Files.createDirectories(target);
                    Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rwx------"));
                } else if (entry.getLinkFlag() == TarArchiveEntry.LF_NORMAL
                        || entry.getLinkFlag() == TarArchiveEntry.LF_OLDNORM) {
                    Files.createDirectories(target.getParent());
                    try (OutputStream out = Files.newOutputStream(target, java.nio.file.StandardOpenOption.CREATE_NEW,
                            java.nio.file.StandardOpenOption.WRITE, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                        int n;
                        while ((n = in.read(buffer)) > 0) {
                            out.write(buffer, 0, n);
                            total += n;
                        }
                    }
                    Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rw-------"));
                    progress.accept(total);
                } else {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "base backup entry '" + entry.getName()
                            + "' is neither a file nor a directory (type '" + (char) entry.getLinkFlag() + "')");
                }
            }
            return total;
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot extract the base backup into " + dir + ": "
                    + e.getMessage(), e);
        }
    }

    /**
     * Checks every file PostgreSQL's manifest lists: present, same size, same CRC-32C. Fails naming the first file that
     * differs.
     */
    static void verify(Path dir, byte[] manifest) {
        JsonNode files;
        try {
            files = MAPPER.readTree(manifest).path("Files");
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the base backup's manifest is not valid JSON", e);
        }
        if (!files.isArray() || files.isEmpty()) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the base backup's manifest lists no files");
        }
        byte[] buffer = new byte[256 * 1024];
        for (JsonNode file : files) {
            String name = file.path("Path").asText();
            Path path = dir.resolve(name).normalize();
            if (!path.startsWith(dir) || !Files.isRegularFile(path)) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "restored file " + name + " is missing");
            }
            try {
                long size = Files.size(path);
                if (size != file.path("Size").asLong()) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "restored file " + name + " has " + size
                            + " bytes; the backup manifest says " + file.path("Size").asLong());
                }
                if ("CRC32C".equals(file.path("Checksum-Algorithm").asText())) {
                    CRC32C crc = new CRC32C();
                    try (InputStream in = Files.newInputStream(path)) {
                        int n;
                        while ((n = in.read(buffer)) > 0) {
                            crc.update(buffer, 0, n);
                        }
                    }
                    // the manifest prints the checksum's bytes in memory order (little-endian)
                    int value = (int) crc.getValue();
                    String actual = HexFormat.of().formatHex(new byte[] {
                            (byte) value, (byte) (value >>> 8), (byte) (value >>> 16), (byte) (value >>> 24)});
                    if (!actual.equalsIgnoreCase(file.path("Checksum").asText())) {
                        throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "restored file " + name
                                + " does not match its checksum in the backup manifest");
                    }
                }
            } catch (IOException e) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot read restored file " + name, e);
            }
        }
    }

    /**
     * Settings for the restored server, written as a fresh {@code postgresql.auto.conf}: never wait for a synchronous
     * standby that is not there, accept no connection before recovery has ended, and recovery settings when
     * {@code recovery} is not empty. Whatever the source's file held is dropped (tenants cannot run ALTER SYSTEM, but a
     * guest's root could have written the file: nothing of it, e.g. an archive_command, may run on another rung);
     * palisade re-applies its own settings once the server runs. Also drops files a fresh server must not inherit.
     */
    static void configure(Path dir, List<String> recovery, boolean archiveRecovery) {
        try {
            Files.deleteIfExists(dir.resolve("postmaster.pid"));
            Files.deleteIfExists(dir.resolve("postmaster.opts"));
            Files.deleteIfExists(dir.resolve("tablespace_map")); // would make PostgreSQL create links at start
            Files.createDirectories(dir.resolve("pg_wal/archive_status"));
            StringBuilder settings = new StringBuilder(
                    "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n"
                            + "# palisade restore\nsynchronous_standby_names = ''\n");
            settings.append("hot_standby = off\n");
            recovery.forEach(line -> settings.append(line).append('\n'));
            Files.deleteIfExists(dir.resolve("postgresql.auto.conf"));
            Files.writeString(dir.resolve("postgresql.auto.conf"), settings.toString(), StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE_NEW);
            if (archiveRecovery) {
                Files.writeString(dir.resolve("recovery.signal"), "");
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot configure the restored data directory " + dir, e);
        }
    }
}
