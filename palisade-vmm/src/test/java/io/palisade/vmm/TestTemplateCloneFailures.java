package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.palisade.host.Cgroups;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link TemplateCache#cloneFailed} on a templates directory shared with other palisades, without QEMU: a template
 * that failed three clones in a row is deleted, but only if it is still the build that failed — one that another
 * process rebuilt while this one waited for the lock is kept.
 */
class TestTemplateCloneFailures {
    private static final String KEY = "imagekey-pg16-c1-m256-d1024-tcg-t0-q00000000-b00000000-f2";

    private Path dir;
    private VmDriver driver;

    @AfterEach
    void cleanUp() {
        if (driver != null) {
            driver.close();
        }
        TestingDirectories.deleteRecursively(dir);
    }

    @Test
    void threeFailedClonesInARowDeleteTheTemplateAndASuccessResetsTheCount() throws Exception {
        TemplateCache cache = cache();
        TemplateCache.Template template = publishedAndFailedTwice(cache);
        cache.cloneSucceeded(template);
        cache.cloneFailed(template);
        cache.cloneFailed(template);
        assertThat(template.dir()).as("two failures after a success").exists();
        cache.cloneFailed(template);
        assertThat(template.dir()).as("three in a row").doesNotExist();
    }

    @Test
    void aTemplateRebuiltWhileTheDeleteWaitedIsKept() throws Exception {
        TemplateCache cache = cache();
        TemplateCache.Template template = publishedAndFailedTwice(cache);
        Thread third;
        synchronized (cache.lock(KEY)) { // as a build of this template in progress holds it
            third = Thread.ofVirtual().start(() -> cache.cloneFailed(template));
            await().atMost(Duration.ofSeconds(5)).until(() -> third.getState() == Thread.State.WAITING
                    || third.getState() == Thread.State.BLOCKED);
            TestingDirectories.deleteRecursively(template.dir()); // the other build replaces it
            publish("second build");
        }
        assertThat(third.join(Duration.ofSeconds(10))).as("the third failure returned").isTrue();
        assertThat(Files.readString(template.dir().resolve("complete"))).isEqualTo("second build");
    }

    private TemplateCache cache() {
        dir = TestingDirectories.newWorkDir("vm-tpl");
        VmDriverConfig config = VmDriverConfig.defaults(dir.resolve("instances"), dir.resolve("no-image"),
                TestingDirectories.serviceUser(), Cgroups.detect("palisade"));
        driver = new VmDriver(config, dir.resolve("templates"), true);
        return driver.templates();
    }

    /** A first build whose first two clones failed. */
    private TemplateCache.Template publishedAndFailedTwice(TemplateCache cache) throws IOException {
        TemplateCache.Template template = publish("first build");
        cache.cloneFailed(template);
        cache.cloneFailed(template);
        return template;
    }

    /** A template directory as a build publishes it (only {@code complete} matters here). */
    private TemplateCache.Template publish(String build) throws IOException {
        Path templateDir = dir.resolve("templates").resolve(KEY);
        Files.createDirectories(templateDir);
        for (String file : List.of("memory.ram", "state", "data.ext4")) {
            Files.writeString(templateDir.resolve(file), "");
        }
        Files.writeString(templateDir.resolve("complete"), build);
        return new TemplateCache.Template(templateDir);
    }
}
