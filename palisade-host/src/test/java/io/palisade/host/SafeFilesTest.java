package io.palisade.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeFilesTest {
    @TempDir
    Path dir;

    @Test
    void readsTheTailOfAPlainFile() throws IOException {
        Path log = Files.writeString(dir.resolve("postgres.log"), "one\ntwo\nthree\n");

        assertThat(SafeFiles.tailLines(log, 2, 1024)).containsExactly("two", "three");
        assertThat(SafeFiles.tailLines(log, 10, 6)).containsExactly("three");
        assertThat(SafeFiles.tailLines(dir.resolve("missing.log"), 10, 1024)).isEmpty();
        assertThat(Processes.tailFile(log, 1)).containsExactly("three");
    }

    @Test
    void readsTheHeadOfAPlainFileAndRefusesLinksAlike() throws IOException {
        Path pid = Files.writeString(dir.resolve("postmaster.pid"), "4242\n" + "x".repeat(5000) + "\n999\n");

        assertThat(SafeFiles.readHead(pid, 5))
                .hasValueSatisfying(bytes -> assertThat(bytes).asString().isEqualTo("4242\n"));
        assertThat(SafeFiles.readHead(pid, 1 << 20)).hasValueSatisfying(bytes -> assertThat(bytes).hasSize(5010));
        assertThat(SafeFiles.readHead(dir.resolve("missing"), 5)).isEmpty();
        Path secret = Files.writeString(dir.resolve("master.key"), "the-master-key");
        Path link = Files.createSymbolicLink(dir.resolve("linked.pid"), secret);
        assertThatThrownBy(() -> SafeFiles.readHead(link, 64)).isInstanceOf(PalisadeException.class)
                .hasMessageNotContaining("the-master-key");
    }

    @Test
    void aSymbolicLinkToASecretIsNeverRead() throws IOException {
        Path secret = Files.writeString(dir.resolve("master.key"), "the-master-key");
        Path log = Files.createSymbolicLink(dir.resolve("postgres.log"), secret);

        assertThatThrownBy(() -> SafeFiles.tailLines(log, 10, 1024))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("refusing to use " + log)
                .hasMessageNotContaining("the-master-key");
    }

    @Test
    void aSymbolicLinkIsNotReadAsASmallFileNorInAnErrorMessageTail() throws IOException {
        Path secret = Files.writeString(dir.resolve("master.key"), "the-master-key");
        Path port = Files.createSymbolicLink(dir.resolve("port"), secret);

        assertThatThrownBy(() -> SafeFiles.readSmall(port, 64)).isInstanceOf(PalisadeException.class);
        assertThat(Processes.tailFile(port, 10)).isEmpty();
    }

    @Test
    void aHardLinkToAnotherFileIsNeverRead() throws IOException {
        Path secret = Files.writeString(dir.resolve("master.key"), "the-master-key");
        Path log = Files.createLink(dir.resolve("postgres.log"), secret);

        assertThatThrownBy(() -> SafeFiles.tailLines(log, 10, 1024)).isInstanceOf(PalisadeException.class);
    }

    @Test
    void aDirectoryOrFifoIsRefused() throws Exception {
        Path sub = Files.createDirectory(dir.resolve("postmaster.pid"));
        assertThatThrownBy(() -> SafeFiles.readSmall(sub, 64)).isInstanceOf(PalisadeException.class);
        Path fifo = dir.resolve("port");
        assertThat(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor()).isZero();
        assertThatThrownBy(() -> SafeFiles.readSmall(fifo, 64)).isInstanceOf(PalisadeException.class);
    }

    @Test
    void replaceWritesOverALinkWithoutTouchingItsTarget() throws IOException {
        Path secret = Files.writeString(dir.resolve("master.key"), "the-master-key");
        Path port = Files.createSymbolicLink(dir.resolve("port"), secret);

        SafeFiles.replace(port, "5432", Optional.empty());

        assertThat(Files.readString(secret)).isEqualTo("the-master-key");
        assertThat(Files.isSymbolicLink(port)).isFalse();
        assertThat(Files.readString(port)).isEqualTo("5432");
        try (var names = Files.list(dir)) {
            assertThat(names.map(p -> p.getFileName().toString()).toList())
                    .containsExactlyInAnyOrder("master.key", "port");
        }
    }

    @Test
    void ensurePlainFileReplacesALinkAndKeepsAPlainFile() throws IOException {
        Path secret = Files.writeString(dir.resolve("master.key"), "the-master-key");
        Path log = Files.createSymbolicLink(dir.resolve("postgres.log"), secret);

        SafeFiles.ensurePlainFile(log);
        assertThat(Files.isRegularFile(log, LinkOption.NOFOLLOW_LINKS)).isTrue();
        assertThat(Files.size(log)).isZero();
        assertThat(Files.readString(secret)).isEqualTo("the-master-key");

        Files.writeString(log, "kept\n");
        SafeFiles.ensurePlainFile(log);
        assertThat(Files.readAllLines(log)).isEqualTo(List.of("kept"));
    }
}
