package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Cgroups;
import io.palisade.testing.TestingDirectories;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link TemplatePruner} on a templates directory without QEMU: templates nobody marked for a day go, the one the
 * caller keeps, recently marked ones, builds in progress and ones another process holds locked stay; a marked template
 * stays.
 */
class TestTemplatePruner {
    private static final Instant NOW = Instant.parse("2026-12-03T12:00:00Z");
    private static final Instant TWO_DAYS_AGO = NOW.minus(Duration.ofDays(2));

    private Path dir;
    private VmDriver driver;
    private TemplateCache cache;

    @BeforeEach
    void setUp() {
        dir = TestingDirectories.newWorkDir("vm-tpl-prune");
        VmDriverConfig config = VmDriverConfig.defaults(dir.resolve("instances"), dir.resolve("no-image"),
                TestingDirectories.serviceUser(), Cgroups.detect("palisade"));
        driver = new VmDriver(config, dir.resolve("templates"), true);
        cache = driver.templates();
    }

    @AfterEach
    void cleanUp() {
        driver.close();
        TestingDirectories.deleteRecursively(dir);
    }

    @Test
    void deletesOnlyCompleteTemplatesNobodyWantedForADay() throws Exception {
        TemplateCache.Template current = publish("current", TWO_DAYS_AGO, TWO_DAYS_AGO);
        TemplateCache.Template oldImage = publish("old-image", TWO_DAYS_AGO, TWO_DAYS_AGO);
        TemplateCache.Template neverMarked = publish("never-marked", TWO_DAYS_AGO, null);
        TemplateCache.Template recent = publish("recent", TWO_DAYS_AGO, NOW.minus(Duration.ofHours(3)));
        TemplateCache.Template justPublished = publish("just-published", NOW.minus(Duration.ofHours(1)), null);
        Path building = Files.createDirectories(cache.dir().resolve("half.building"));
        setTime(Files.writeString(building.resolve("memory.ram"), ""), TWO_DAYS_AGO);
        Path incomplete = Files.createDirectories(cache.dir().resolve("incomplete"));
        Path leftover = Files.createDirectories(cache.dir().resolve("crashed.deleting")); // a pruner that stopped
        Files.writeString(leftover.resolve("memory.ram"), "");

        List<String> deleted = new TemplatePruner(cache).prune("current", NOW);

        assertThat(deleted).containsExactlyInAnyOrder("old-image", "never-marked");
        assertThat(oldImage.dir()).doesNotExist();
        assertThat(neverMarked.dir()).doesNotExist();
        assertThat(current.dir()).as("the one the caller keeps").exists();
        assertThat(recent.dir()).exists();
        assertThat(justPublished.dir()).exists();
        assertThat(building).as("a build in progress").exists();
        assertThat(incomplete).exists();
        assertThat(leftover).as("what a pruner that stopped half-way left").doesNotExist();
        assertThat(cache.dir().resolve("old-image.deleting")).doesNotExist();
        assertThat(new TemplatePruner(cache).prune("current", NOW)).isEmpty();
    }

    @Test
    void aTemplateWhoseLockAnotherProcessHoldsIsLeftForLater() throws Exception {
        TemplateCache.Template old = publish("old-image", TWO_DAYS_AGO, TWO_DAYS_AGO);
        // another palisade on the host building or deleting it: a second JVM holding the POSIX lock on its lock file
        Path source = Files.writeString(dir.resolve("HoldLock.java"), """
                import java.nio.channels.FileChannel;
                import java.nio.file.Path;
                import java.nio.file.StandardOpenOption;
                public class HoldLock {
                    public static void main(String[] args) throws Exception {
                        try (FileChannel channel = FileChannel.open(Path.of(args[0]), StandardOpenOption.CREATE,
                                StandardOpenOption.WRITE)) {
                            channel.lock();
                            System.out.println("locked");
                            System.in.read();
                        }
                    }
                }
                """);
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process holder = new ProcessBuilder(java, source.toString(), cache.dir().resolve("old-image.lock").toString())
                .redirectErrorStream(true).start();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(holder.getInputStream(),
                StandardCharsets.UTF_8))) {
            assertThat(CompletableFuture.supplyAsync(() -> readLine(out)).get(60, TimeUnit.SECONDS))
                    .isEqualTo("locked");
            assertThat(new TemplatePruner(cache).prune("current", NOW)).isEmpty();
            assertThat(old.dir()).exists();
            holder.getOutputStream().close(); // the other process lets go
            assertThat(holder.waitFor(30, TimeUnit.SECONDS)).isTrue();
        } finally {
            holder.destroyForcibly();
        }
        assertThat(new TemplatePruner(cache).prune("current", NOW)).containsExactly("old-image");
        assertThat(old.dir()).doesNotExist();
    }

    private static String readLine(BufferedReader reader) {
        try {
            return reader.readLine();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void markingATemplateWantedKeepsIt() throws Exception {
        TemplateCache.Template old = publish("old-image", TWO_DAYS_AGO, TWO_DAYS_AGO);
        TemplateCache.markUsed(old); // as a clone's lookup or a server's preparation does, now
        assertThat(new TemplatePruner(cache).prune("current", Instant.now())).isEmpty();
        assertThat(old.dir()).exists();
        assertThat(new TemplatePruner(cache).prune("current", Instant.now().plus(Duration.ofDays(2))))
                .containsExactly("old-image");
    }

    /** A template directory as a build publishes it, published and last marked at the given times. */
    private TemplateCache.Template publish(String key, Instant published, Instant marked) throws IOException {
        Path templateDir = Files.createDirectories(cache.dir().resolve(key));
        for (String file : List.of("memory.ram", "state", "data.ext4")) {
            Files.writeString(templateDir.resolve(file), "");
        }
        setTime(Files.writeString(templateDir.resolve("complete"), key + "\n"), published);
        if (marked != null) {
            setTime(Files.writeString(templateDir.resolve(TemplateCache.USED), ""), marked);
        }
        return new TemplateCache.Template(templateDir);
    }

    private static Path setTime(Path file, Instant time) throws IOException {
        return Files.setLastModifiedTime(file, FileTime.from(time));
    }
}
