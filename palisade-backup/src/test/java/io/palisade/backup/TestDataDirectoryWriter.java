package io.palisade.backup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import io.palisade.testing.TestingDirectories;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.zip.CRC32C;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class TestDataDirectoryWriter {
    private final Path work = TestingDirectories.newWorkDir("ddw");

    @AfterEach
    void clean() {
        TestingDirectories.deleteRecursively(work);
    }

    @Test
    void extractsAndVerifiesAgainstTheManifest() throws Exception {
        byte[] version = "16\n".getBytes(StandardCharsets.UTF_8);
        Path dir = work.resolve("data");
        long bytes = DataDirectoryWriter.extract(new ByteArrayInputStream(tar(List.of(
                new Entry("PG_VERSION", version, null), new Entry("base/1/1259", new byte[8192], null)))), dir, b -> {});
        assertThat(bytes).isEqualTo(version.length + 8192);
        assertThat(Files.readString(dir.resolve("PG_VERSION"))).isEqualTo("16\n");
        DataDirectoryWriter.verify(dir, manifest("PG_VERSION", version));

        byte[] other = "15\n".getBytes(StandardCharsets.UTF_8);
        assertThatThrownBy(() -> DataDirectoryWriter.verify(dir, manifest("PG_VERSION", other)))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("PG_VERSION does not match its checksum");
        assertThatThrownBy(() -> DataDirectoryWriter.verify(dir, manifest("global/pg_control", version)))
                .hasMessageContaining("restored file global/pg_control is missing");
    }

    @Test
    void refusesEntriesOutsideTheDirectoryAndLinks() throws Exception {
        Path dir = work.resolve("data");
        assertThatThrownBy(() -> DataDirectoryWriter.extract(new ByteArrayInputStream(tar(List.of(
                new Entry("../escape", new byte[1], null)))), dir, b -> {}))
                .hasMessageContaining("points outside the data directory");
        assertThat(work.resolve("escape")).doesNotExist();
        assertThatThrownBy(() -> DataDirectoryWriter.extract(new ByteArrayInputStream(tar(List.of(
                new Entry("pg_wal", null, "/etc")))), work.resolve("data2"), b -> {}))
                .hasMessageContaining("is a link to /etc");
    }

    @Test
    void configureReplacesTheSourcesAutoConf() throws Exception {
        Path dir = work.resolve("data");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("postgresql.auto.conf"), "archive_command = 'curl evil'\n");
        Files.writeString(dir.resolve("postmaster.pid"), "123\n");
        DataDirectoryWriter.configure(dir, List.of("recovery_target_action = 'promote'"), true);
        String conf = Files.readString(dir.resolve("postgresql.auto.conf"));
        assertThat(conf).doesNotContain("archive_command").contains("synchronous_standby_names = ''")
                .contains("hot_standby = off").contains("recovery_target_action = 'promote'");
        assertThat(dir.resolve("recovery.signal")).exists();
        assertThat(dir.resolve("postmaster.pid")).doesNotExist();
    }

    private record Entry(String name, byte[] content, String linkTarget) {}

    private static byte[] tar(List<Entry> entries) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
            for (Entry entry : entries) {
                TarArchiveEntry e;
                if (entry.linkTarget() != null) {
                    e = new TarArchiveEntry(entry.name(), TarArchiveEntry.LF_SYMLINK);
                    e.setLinkName(entry.linkTarget());
                    tar.putArchiveEntry(e);
                } else {
                    e = new TarArchiveEntry(entry.name());
                    e.setSize(entry.content().length);
                    tar.putArchiveEntry(e);
                    tar.write(entry.content());
                }
                tar.closeArchiveEntry();
            }
        }
        return out.toByteArray();
    }

    /** A one-file manifest in PostgreSQL's format (CRC-32C printed in memory order). */
    private static byte[] manifest(String path, byte[] content) {
        CRC32C crc = new CRC32C();
        crc.update(content);
        int v = (int) crc.getValue();
        String hex = HexFormat.of().formatHex(new byte[] {(byte) v, (byte) (v >>> 8), (byte) (v >>> 16), (byte) (v >>> 24)});
        return ("{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [{\"Path\": \"" + path + "\", \"Size\": "
                + content.length + ", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"" + hex + "\"}]}")
                .getBytes(StandardCharsets.UTF_8);
    }
}
