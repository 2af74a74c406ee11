package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Processes;
import io.palisade.testing.TestingDirectories;
import io.palisade.vmm.VmNetwork;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code palisade train}, the workload bin/palisade records the JVM's AOT cache from: it runs on a server of its own,
 * leaves another palisade's VM networks alone, leaves nothing running and removes its directory; of serve's arguments
 * (parsed as serve parses them) it takes over only the service user and cgroup parent; it refuses a directory that
 * exists, which it would remove.
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
    void runsTheWorkloadOnAServerOfItsOwnAndLeavesNothing() throws Exception {
        Path dir = work.resolve("server");
        // a running palisade's VM network in the default pool, as its start-up reconcile would see an orphan's
        String namespace = VmNetwork.NAMESPACE_PREFIX + "aot" + ProcessHandle.current().pid();
        ip("netns", "add", namespace);
        try {
            ip("-n", namespace, "link", "add", VmNetwork.NS_VETH, "type", "veth", "peer", "name", "peer0");
            ip("-n", namespace, "addr", "add", "10.213.255.254/30", "dev", VmNetwork.NS_VETH);

            // serve's arguments as bin/jvm/aot-cache passes them on: only the cgroup parent is taken over (from the
            // --config file, in its "key: value" form), the unreachable store is not
            Path config = Files.writeString(work.resolve("serve.properties"),
                    "agent.cgroup-parent : palisade-test\nproxy.port = 1\n");
            CliRun run = train("--data-dir", dir.toString(), "--requests", "50", "--",
                    "-c", "store.url=jdbc:postgresql://127.0.0.1:1/nowhere", "--config", config.toString());

            assertThat(run.exitCode()).as(run.err()).isZero();
            assertThat(run.out()).contains("training: taken over from serve's arguments: "
                    + "agent.cgroup-parent=palisade-test\n");
            assertThat(Path.of("/run/netns", namespace)).as("another palisade's VM network is left alone").exists();
            assertThat(run.out()).contains("database db-").contains("50 requests on each broker route")
                    .contains("queries through the proxy").contains("training: done");
        } finally {
            if (Files.exists(Path.of("/run/netns", namespace))) {
                ip("netns", "delete", namespace);
            }
        }

        assertThat(dir).as("the training server's data directory is removed").doesNotExist();
        assertThat(ProcessHandle.allProcesses()
                .filter(p -> p.info().commandLine().orElse("").contains(dir.toString())))
                .as("no process (metadata store, tenant server) of the training server is left").isEmpty();
    }

    @Test
    void refusesServeArgumentsServeWouldRefuse() {
        Path dir = work.resolve("server");

        CliRun run = train("--data-dir", dir.toString(), "--", "--no-such-option");

        assertThat(run.exitCode()).isEqualTo(2);
        assertThat(run.err().strip()).contains("serve's arguments").contains("--no-such-option")
                .doesNotContain("\n");
        assertThat(dir).doesNotExist();
    }

    private static void ip(String... args) {
        List<String> command = new ArrayList<>(List.of("ip"));
        command.addAll(List.of(args));
        Processes.Result result = Processes.run(command, Duration.ofSeconds(10), null);
        assertThat(result.ok()).as(command + ": " + result.output()).isTrue();
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
