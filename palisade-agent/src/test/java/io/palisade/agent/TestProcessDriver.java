package io.palisade.agent;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Cgroups;
import io.palisade.host.PostgresServer;
import io.palisade.spi.IsolationDriver;
import io.palisade.testing.AbstractTestIsolationDriver;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

class TestProcessDriver extends AbstractTestIsolationDriver {
    private Path workDir;
    private Cgroups cgroups;

    @Override
    protected IsolationDriver createDriver() {
        workDir = TestingDirectories.newWorkDir("process-driver");
        cgroups = Cgroups.detect("palisade-test");
        return new ProcessDriver(new ProcessDriverConfig(
                workDir.resolve("instances"),
                TestingDirectories.cacheDir(),
                TestingDirectories.serviceUser(),
                cgroups,
                Duration.ofSeconds(60)));
    }

    @Override
    protected void assertNothingLeft(String id) {
        assertThat(workDir.resolve("instances").resolve(id)).doesNotExist();
        assertThat(PostgresServer.socketDirFor(id)).doesNotExist();
        assertThat(cgroups.find(ProcessDriver.cgroupPrefix(workDir.resolve("instances")) + id)).isEmpty();
        assertThat(ProcessHandle.allProcesses()
                        .filter(p -> p.info().commandLine().orElse("").contains(id))
                        .toList())
                .as("processes mentioning %s", id)
                .isEmpty();
    }

    @Override
    protected void cleanUp() {
        TestingDirectories.deleteRecursively(workDir);
        assertThat(Files.exists(workDir)).isFalse();
    }
}
