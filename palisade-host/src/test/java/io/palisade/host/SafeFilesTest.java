package io.palisade.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
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
        assertThat(SafeFiles.readHead(pid.resolve("below-a-file"), 5)).isEmpty();
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
    void aSocketIsRefusedAtOnce() throws Exception {
        Path socket = dir.resolve("postmaster.pid");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            assertTimeoutPreemptively(Duration.ofSeconds(10), () -> assertThatThrownBy(() ->
                    SafeFiles.readHead(socket, 64)).isInstanceOf(PalisadeException.class)
                    .hasMessageContaining("socket"));
        }
    }

    /**
     * A tenant swaps what stands at the name while palisade reads it: a plain file, a FIFO, a symbolic link to a
     * secret, each renamed into place in turn. A check by name followed by an open by name loses this race: it blocks
     * for ever opening the FIFO (the code before {@link NoFollowOpen} hung here within two seconds). Every read must
     * give the plain file or a refusal, and none may block. (A hard link is left out: its guard is the kernel's
     * {@code fs.protected_hardlinks}, which does not bind root, who runs this test; see {@link NoFollowOpen}.)
     */
    @Test
    void aNameSwappedWhileItIsReadIsNeitherWaitedOnNorFollowed() throws Exception {
        Path target = dir.resolve("postmaster.pid");
        Path plain = Files.writeString(dir.resolve("plain.template"), "4242\n");
        Path secret = Files.writeString(dir.resolve("master.key"), "the-master-key");
        Path fifo = dir.resolve("fifo.template");
        assertThat(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor()).isZero();
        Files.copy(plain, target);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> swapperFailure = new AtomicReference<>();
        Thread swapper = Thread.ofPlatform().name("swapper").uncaughtExceptionHandler((thread, e) ->
                swapperFailure.set(e)).start(() -> {
            for (int i = 0; !stop.get(); i++) {
                Path next = dir.resolve("next");
                try {
                    switch (i % 3) {
                        case 0 -> Files.copy(plain, next, StandardCopyOption.REPLACE_EXISTING);
                        case 1 -> Files.createLink(next, fifo);
                        default -> Files.createSymbolicLink(next, secret);
                    }
                    Files.move(next, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            }
        });
        AtomicInteger plainReads = new AtomicInteger();
        AtomicInteger refusals = new AtomicInteger();
        try {
            assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
                long end = System.nanoTime() + Duration.ofSeconds(2).toNanos();
                while (System.nanoTime() < end) {
                    try {
                        Optional<byte[]> read = SafeFiles.readHead(target, 64);
                        assertThat(read).isPresent();
                        assertThat(new String(read.get(), StandardCharsets.UTF_8)).isEqualTo("4242\n");
                        plainReads.incrementAndGet();
                    } catch (PalisadeException refused) {
                        refusals.incrementAndGet();
                    }
                }
            });
        } finally {
            stop.set(true);
            swapper.join();
        }
        assertThat(swapperFailure.get()).as("the swapper's failure").isNull();
        assertThat(plainReads.get()).as("reads of the plain file").isPositive();
        assertThat(refusals.get()).as("refusals of the FIFO and the link").isPositive();
        assertThat(Files.readString(secret)).isEqualTo("the-master-key");
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
