package io.palisade.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.host.Cgroups;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;

/**
 * The instance directory is the service user's, so a tenant that runs code in its server can put links there: palisade
 * (root) must never read or write through them.
 */
class TestProcessDriverLinks {
    @Test
    void aLogLinkedToASecretIsNeverReturnedAndAPortLinkIsNeverWrittenThrough() throws Exception {
        Path workDir = TestingDirectories.newWorkDir("links");
        String id = "db-l" + Long.toString(ThreadLocalRandom.current().nextLong(Long.MAX_VALUE), 36).substring(0, 8);
        try (ProcessDriver driver = new ProcessDriver(new ProcessDriverConfig(workDir.resolve("instances"),
                TestingDirectories.cacheDir(), TestingDirectories.serviceUser(), Cgroups.detect("palisade-test"),
                Duration.ofSeconds(60)))) {
            InstanceSpec spec = new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app");
            String password = "pw-" + Long.toHexString(ThreadLocalRandom.current().nextLong());
            driver.provision(spec, new TenantCredentials("app", "app", password), ProgressListener.NONE);
            try {
                Path instance = driver.instanceDir(id);
                Path secret = Files.writeString(workDir.resolve("master.key"), "the-master-key\n");
                assertThat(driver.logTail(id, 100)).isNotEmpty();

                Path log = instance.resolve("postgres.log");
                Files.delete(log);
                Files.createSymbolicLink(log, secret);
                assertThatThrownBy(() -> driver.logTail(id, 100))
                        .isInstanceOf(PalisadeException.class)
                        .hasMessageNotContaining("the-master-key");

                Path port = instance.resolve("port");
                Files.delete(port);
                Files.createSymbolicLink(port, secret);
                driver.stop(id);
                driver.start(spec, ProgressListener.NONE);

                assertThat(Files.readString(secret)).isEqualTo("the-master-key\n");
                assertThat(Files.isSymbolicLink(port)).isFalse();
                assertThat(Files.isSymbolicLink(log)).isFalse();
                assertThat(driver.logTail(id, 100)).noneMatch(line -> line.contains("the-master-key"));
            } finally {
                driver.destroy(id);
            }
        } finally {
            TestingDirectories.deleteRecursively(workDir);
        }
    }
}
