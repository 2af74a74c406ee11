package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * SIGTERM while {@code palisade serve} is still starting: the shutdown hook waits for the start, then closes what it
 * started. The console says it is stopping instead of "palisade is ready", and still shows the admin API key the start
 * generated, since no later start shows it again.
 */
class TestServeStopDuringStart {
    private final Path work = TestingDirectories.newWorkDir("serve-stop");

    @AfterEach
    void cleanUp() {
        TestingDirectories.deleteRecursively(work);
    }

    @Test
    void aStopDuringTheStartSaysSoKeepsTheGeneratedKeyAndLeavesNothingRunning() throws Exception {
        Path dataDir = work.resolve("data");
        Path log = work.resolve("serve.log");
        Process serve = new ProcessBuilder(TestingPalisadeProcess.serveCommand(dataDir)).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        try {
            // logged once the hook is registered, before the store's initdb: the start has seconds left to go
            await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(20))
                    .until(() -> Files.readString(log).contains("metadata store: embedded PostgreSQL"));
            serve.destroy(); // SIGTERM
            assertThat(serve.waitFor(120, TimeUnit.SECONDS)).as("serve ended").isTrue();
        } finally {
            serve.destroyForcibly();
        }
        String out = Files.readString(log);
        assertThat(out).as(out)
                .contains("palisade: stopping (asked to stop during its start)")
                .contains("admin API key (shown once, store it now): ")
                .doesNotContain("palisade is ready");
        assertThat(serve.exitValue()).as("killed by SIGTERM, after the hook").isEqualTo(143);
        assertThat(ProcessHandle.allProcesses()
                .filter(p -> p.info().commandLine().orElse("").contains(dataDir.toString())))
                .as("nothing of that server runs on (its store's postmaster included)").isEmpty();
    }
}
