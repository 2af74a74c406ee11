package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.palisade.host.Cgroups;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link VmDriver#prepareTemplate} without QEMU work: what {@link VmDriver#healthDetails()} reports when the rung is
 * not usable (no guest image), that a driver without clones prepares nothing, and that close ends the preparation.
 */
class TestTemplatePreparerStatus {
    private Path dir;

    @AfterEach
    void cleanUp() {
        TestingDirectories.deleteRecursively(dir);
    }

    @Test
    void withoutAnImageThePreparationReportsWhyAndCloseEndsIt() throws Exception {
        VmDriver driver = driver(true);
        assertThat(driver.healthDetails()).as("nothing before prepareTemplate").isEmpty();
        driver.prepareTemplate(Plan.NANO, PostgresVersion.DEFAULT, Duration.ofMillis(50));
        await().atMost(Duration.ofSeconds(10)).until(
                () -> "unavailable".equals(driver.healthDetails().get("template_state")));
        assertThat(driver.healthDetails().get("template_error")).contains("not usable");
        assertThat(driver.templates().builds()).isZero();
        driver.close();
        assertThat(driver.preparer().orElseThrow().awaitEnd(Duration.ofSeconds(5))).as("thread ended").isTrue();
    }

    @Test
    void aDriverThatNeverClonesPreparesNothing() {
        VmDriver driver = driver(false);
        driver.prepareTemplate(Plan.NANO, PostgresVersion.DEFAULT, Duration.ofMillis(50));
        assertThat(driver.preparer()).isEmpty();
        assertThat(driver.healthDetails()).isEmpty();
        driver.close();
    }

    private VmDriver driver(boolean cloneCreate) {
        dir = TestingDirectories.newWorkDir("vm");
        VmDriverConfig config = VmDriverConfig.defaults(dir, dir.resolve("no-image"), TestingDirectories.serviceUser(),
                Cgroups.detect("palisade"));
        return new VmDriver(config, dir.resolve(".templates"), cloneCreate);
    }
}
