package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.host.Processes;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * One palisade per data directory: a second holder is refused (CONFLICT, naming the directory) whether it is another
 * process or this JVM, and a refused second attempt in this JVM leaves the first lock in force (a POSIX lock is lost
 * when the process closes any descriptor of its file).
 */
class TestDataDirLock {
    private final Path work = TestingDirectories.newWorkDir("datadir-lock");

    @AfterEach
    void cleanUp() {
        TestingDirectories.deleteRecursively(work);
    }

    @Test
    void aSecondHolderIsRefusedAndTheFirstLockStaysInForce() throws Exception {
        Path dataDir = work.resolve("data");
        try (DataDirLock first = DataDirLock.acquire(dataDir)) {
            assertThatThrownBy(() -> DataDirLock.acquire(dataDir))
                    .isInstanceOfSatisfying(PalisadeException.class,
                            e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CONFLICT))
                    .hasMessageContaining("another palisade is running on the data directory " + dataDir);
            assertThat(lockedForAnotherProcess(dataDir)).as("after the refused second attempt").isTrue();
            assertThat(Files.getPosixFilePermissions(dataDir.resolve(DataDirLock.FILE)))
                    .extracting(Object::toString).containsExactlyInAnyOrder("OWNER_READ", "OWNER_WRITE");
        }
        assertThat(lockedForAnotherProcess(dataDir)).as("after close").isFalse();
        try (DataDirLock again = DataDirLock.acquire(dataDir)) {
            assertThat(lockedForAnotherProcess(dataDir)).isTrue();
        }
    }

    @Test
    void aDirectoryAnotherProcessHoldsIsRefused() throws Exception {
        Path dataDir = Files.createDirectories(work.resolve("data"));
        Files.createFile(dataDir.resolve(DataDirLock.FILE));
        Process holder = Processes.builder(List.of(java(), probe().toString(), dataDir.resolve(DataDirLock.FILE)
                .toString(), "hold")).redirectErrorStream(true).start();
        try (var out = holder.inputReader()) {
            assertThat(out.readLine()).isEqualTo("holding");

            assertThatThrownBy(() -> DataDirLock.acquire(dataDir))
                    .isInstanceOfSatisfying(PalisadeException.class,
                            e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CONFLICT))
                    .hasMessageContaining(dataDir.toString());
        } finally {
            holder.getOutputStream().close(); // the holder exits when its stdin closes
            assertThat(holder.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        }
        try (DataDirLock mine = DataDirLock.acquire(dataDir)) {
            assertThat(lockedForAnotherProcess(dataDir)).as("once the other process let go").isTrue();
        }
    }

    /** Whether another process finds the lock file locked (a one-file Java program trying the same lock). */
    private boolean lockedForAnotherProcess(Path dataDir) throws Exception {
        Processes.Result result = Processes.run(
                List.of(java(), probe().toString(), dataDir.resolve(DataDirLock.FILE).toString(), "try"),
                Duration.ofSeconds(60), null);
        assertThat(result.ok()).as(result.output()).isTrue();
        return result.output().strip().equals("held");
    }

    private static String java() {
        return ProcessHandle.current().info().command().orElseThrow();
    }

    /** A one-file program: "try" prints whether the lock is held; "hold" takes it until its stdin closes. */
    private Path probe() throws Exception {
        Path probe = work.resolve("Probe.java");
        if (!Files.exists(probe)) {
            Files.writeString(probe, """
                    public class Probe {
                        public static void main(String[] args) throws Exception {
                            try (var channel = java.nio.channels.FileChannel.open(java.nio.file.Path.of(args[0]),
                                    java.nio.file.StandardOpenOption.WRITE)) {
                                var lock = channel.tryLock();
                                if (args[1].equals("try")) {
                                    System.out.println(lock == null ? "held" : "free");
                                    return;
                                }
                                System.out.println(lock == null ? "held" : "holding");
                                System.out.flush();
                                System.in.read();
                            }
                        }
                    }
                    """);
        }
        return probe;
    }
}
