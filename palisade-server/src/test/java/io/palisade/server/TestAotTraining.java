package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code palisade train}, the workload bin/palisade records the JVM's AOT cache from: it runs on a server of its own,
 * leaves nothing running and removes its directory; it refuses a directory that exists, which it would remove.
 */
class TestAotTraining {
    private final Path work = TestingDirectories.newWorkDir("aot-training");

    @AfterEach
    void cleanUp() {
        TestingDirectories.deleteRecursively(work);
    }

    private static CliRun train(String... args) {
        String[] all = new String[args.length + 1];
        all[0] = "train";
        System.arraycopy(args, 0, all, 1, args.length);
        return CliRun.of(all);
    }

    @Test
    void runsTheWorkloadOnAServerOfItsOwnAndLeavesNothing() {
        Path dir = work.resolve("server");

        CliRun run = train("--data-dir", dir.toString(), "--requests", "50");

        assertThat(run.exitCode()).as(run.err()).isZero();
        assertThat(run.out()).contains("database db-").contains("50 requests on each broker route")
                .contains("queries through the proxy").contains("training: done");
        assertThat(dir).as("the training server's data directory is removed").doesNotExist();
        assertThat(ProcessHandle.allProcesses()
                .filter(p -> p.info().commandLine().orElse("").contains(dir.toString())))
                .as("no process (metadata store, tenant server) of the training server is left").isEmpty();
    }

    @Test
    void refusesADirectoryThatExistsAndKeepsIt() throws Exception {
        Path existing = Files.createDirectories(work.resolve("someone-elses"));
        Path file = Files.writeString(existing.resolve("keep.txt"), "data");

        CliRun run = train("--data-dir", existing.toString());

        assertThat(run.exitCode()).isNotZero();
        assertThat(run.err().strip()).contains(existing + " exists").doesNotContain("\n").doesNotContain("Exception");
        assertThat(file).hasContent("data");
    }
}
