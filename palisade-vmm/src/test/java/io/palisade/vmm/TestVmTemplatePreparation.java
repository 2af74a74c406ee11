package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.palisade.host.Cgroups;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The template snapshot of the first create, on real QEMU (TCG here): two creates racing on a fresh driver build one
 * template between them; {@link VmDriver#prepareTemplate} builds it in the background (a create arriving meanwhile
 * waits for it and clones), reports it in {@link VmDriver#healthDetails()}, and builds it again when the image key changes.
 */
class TestVmTemplatePreparation {
    private static final Duration BUILD_BOUND = Duration.ofMinutes(4);

    private final List<VmDriver> drivers = new ArrayList<>();
    private final List<String> ids = new ArrayList<>();
    private final List<Path> dirs = new ArrayList<>();

    @AfterEach
    void cleanUp() {
        for (VmDriver driver : drivers) {
            for (String id : ids) {
                driver.destroy(id);
                TestingVm.assertNothingLeft(driver, id);
            }
            driver.close();
            driver.preparer().ifPresent(p -> {
                try {
                    assertThat(p.awaitEnd(BUILD_BOUND)).as("preparation thread ended").isTrue();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            assertThat(driver.listInstances()).as("instances left (template VMs included)").isEmpty();
            TestingDirectories.deleteRecursively(driver.config().instancesDir());
        }
        dirs.forEach(TestingDirectories::deleteRecursively);
    }

    @Test
    void twoRacingFirstCreatesBuildOneTemplate() throws Exception {
        VmDriver driver = driver(TestingVm.imageDir());
        String suffix = Long.toString(System.nanoTime() % 100_000, 36);
        CountDownLatch go = new CountDownLatch(1);
        List<CompletableFuture<RunningInstance>> creates = new ArrayList<>();
        for (String name : List.of("db-racea" + suffix, "db-raceb" + suffix)) {
            ids.add(name);
            creates.add(CompletableFuture.supplyAsync(() -> {
                awaitQuietly(go);
                return driver.provision(spec(name), credentials(), ProgressListener.NONE);
            }, runnable -> Thread.ofVirtual().name("create-" + name).start(runnable)));
        }
        go.countDown();
        RunningInstance a = creates.get(0).get();
        RunningInstance b = creates.get(1).get();
        System.out.println("racing create A: " + a.details());
        System.out.println("racing create B: " + b.details());

        assertThat(driver.templates().builds()).as("template builds").isEqualTo(1);
        assertThat(CreatePath.from(a.details())).contains(CreatePath.CLONE);
        assertThat(CreatePath.from(b.details())).contains(CreatePath.CLONE);
        assertThat(a.details().get("template")).isNotNull().isEqualTo(b.details().get("template"));
        assertThat(completeTemplates(driver)).containsExactly(a.details().get("template"));
    }

    @Test
    void preparedInTheBackgroundAndRebuiltWhenTheImageKeyChanges() throws Exception {
        Path image = imageCopy("prep1");
        VmDriver driver = driver(image);
        driver.prepareTemplate(Plan.NANO, PostgresVersion.DEFAULT, Duration.ofMillis(500));
        await().atMost(Duration.ofSeconds(30)).until(
                () -> "building".equals(driver.healthDetails().get("template_state")));
        Map<String, String> building = driver.healthDetails();
        System.out.println("while building: " + building);
        assertThat(building.get("template_key")).startsWith(imageKey(image) + "-pg16-c1-m256-");
        assertThat(building).containsKeys("template_phase", "template_elapsed_ms");

        // a create arriving while the template is prepared waits for it and clones; no second build
        String id = "db-prep" + Long.toString(System.nanoTime() % 100_000, 36);
        ids.add(id);
        RunningInstance created = driver.provision(spec(id), credentials(), ProgressListener.NONE);
        System.out.println("create during preparation: " + created.details());
        assertThat(CreatePath.from(created.details())).contains(CreatePath.CLONE);
        assertThat(created.details().get("template")).isEqualTo(building.get("template_key"));
        assertThat(driver.healthDetails()).containsEntry("template_state", "ready");
        assertThat(driver.templates().builds()).isEqualTo(1);

        // a new guest image (key) → built again in the background, without a create asking for it
        writeImageKey(image, imageKey(image) + "b");
        await().atMost(BUILD_BOUND).pollInterval(Duration.ofMillis(200)).until(() -> {
            Map<String, String> details = driver.healthDetails();
            return "ready".equals(details.get("template_state"))
                    && details.get("template_key").startsWith(imageKey(image) + "-");
        });
        System.out.println("after the image change: " + driver.healthDetails());
        assertThat(driver.templates().builds()).isEqualTo(2);
        assertThat(completeTemplates(driver)).hasSize(2)
                .contains(building.get("template_key"), driver.healthDetails().get("template_key"));
    }

    private VmDriver driver(Path imageDir) {
        TestingVm.requireImageAndRoot();
        Path dir = TestingDirectories.newWorkDir("vm");
        VmDriverConfig config = VmDriverConfig.defaults(
                        dir, imageDir, TestingDirectories.serviceUser(), Cgroups.detect("palisade"))
                .withNetworkPool("10.214.40.0/24")
                .withBootTimeout(Duration.ofSeconds(120));
        VmDriver driver = new VmDriver(config);
        drivers.add(driver);
        return driver;
    }

    /** The image's files linked into a directory of its own with a copy of the manifest whose key this test owns. */
    private Path imageCopy(String keySuffix) throws IOException {
        TestingVm.requireImageAndRoot();
        Path source = TestingVm.imageDir().toRealPath();
        Path copy = TestingDirectories.newWorkDir("vm-image");
        dirs.add(copy);
        try (Stream<Path> files = Files.list(source)) {
            for (Path file : files.toList()) {
                if (!file.getFileName().toString().equals("manifest.json")) {
                    Files.createSymbolicLink(copy.resolve(file.getFileName()), file);
                }
            }
        }
        Files.copy(source.resolve("manifest.json"), copy.resolve("manifest.json"));
        writeImageKey(copy, GuestImage.load(source).key() + "-" + keySuffix + System.nanoTime() % 10_000);
        return copy;
    }

    private static String imageKey(Path image) {
        return GuestImage.load(image).key();
    }

    private static void writeImageKey(Path image, String key) throws IOException {
        Path manifest = image.resolve("manifest.json");
        String text = Files.readString(manifest, StandardCharsets.UTF_8)
                .replaceFirst("\"key\"\\s*:\\s*\"[^\"]*\"", "\"key\": \"" + key + "\"");
        Path next = image.resolve("manifest.json.new");
        Files.writeString(next, text, StandardCharsets.UTF_8);
        Files.move(next, manifest, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    private static List<String> completeTemplates(VmDriver driver) throws IOException {
        try (Stream<Path> dirs = Files.list(driver.templatesDir())) {
            return dirs.filter(d -> Files.exists(d.resolve("complete")))
                    .map(d -> d.getFileName().toString())
                    .sorted()
                    .toList();
        }
    }

    private static InstanceSpec spec(String id) {
        return new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app");
    }

    private static TenantCredentials credentials() {
        return new TenantCredentials("app", "app", TestingVm.randomSecret());
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
