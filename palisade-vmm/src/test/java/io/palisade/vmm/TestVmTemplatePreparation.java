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
 * The template snapshot of the first create, on real QEMU (TCG here): creates racing on two fresh drivers (other data
 * directories, one templates directory, as two servers on a host) build one template between them; {@link VmDriver#prepareTemplate} builds it in the background (a create arriving meanwhile
 * waits for it and clones), reports it in {@link VmDriver#healthDetails()}, and builds it again when the image key changes;
 * a build abandoned mid-boot ({@link VmDriver#abandonTemplateBuilds}, a stopped {@code palisade prepare-template})
 * leaves nothing behind and publishes nothing.
 */
class TestVmTemplatePreparation {
    private static final Duration BUILD_BOUND = Duration.ofMinutes(4);

    private final List<VmDriver> drivers = new ArrayList<>();
    /** The databases each driver created. */
    private final Map<VmDriver, List<String>> ids = new java.util.IdentityHashMap<>();
    private final List<Path> dirs = new ArrayList<>();

    @AfterEach
    void cleanUp() {
        for (VmDriver driver : drivers) {
            for (String id : ids.getOrDefault(driver, List.of())) {
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
    void racingFirstCreatesOnTwoDriversSharingTheTemplatesDirBuildOneTemplate() throws Exception {
        VmDriver driver = driver(TestingVm.imageDir());
        VmDriver other = driver(TestingVm.imageDir(), "10.214.41.0/24", driver.templatesDir());
        String suffix = Long.toString(System.nanoTime() % 100_000, 36);
        CountDownLatch go = new CountDownLatch(1);
        List<CompletableFuture<RunningInstance>> creates = new ArrayList<>();
        Map<String, VmDriver> creators = Map.of("db-racea" + suffix, driver, "db-raceb" + suffix, driver,
                "db-racec" + suffix, other);
        for (Map.Entry<String, VmDriver> create : creators.entrySet()) {
            String name = create.getKey();
            ids.computeIfAbsent(create.getValue(), d -> new ArrayList<>()).add(name);
            creates.add(CompletableFuture.supplyAsync(() -> {
                awaitQuietly(go);
                return create.getValue().provision(spec(name), credentials(), ProgressListener.NONE);
            }, runnable -> Thread.ofVirtual().name("create-" + name).start(runnable)));
        }
        go.countDown();
        List<RunningInstance> created = new ArrayList<>();
        for (CompletableFuture<RunningInstance> create : creates) {
            created.add(create.get());
            System.out.println("racing create: " + created.getLast().details());
        }

        assertThat(driver.templates().builds() + other.templates().builds()).as("template builds").isEqualTo(1);
        String template = created.getFirst().details().get("template");
        assertThat(template).isNotNull();
        for (RunningInstance instance : created) {
            assertThat(CreatePath.from(instance.details())).contains(CreatePath.CLONE);
            assertThat(instance.details()).containsEntry("template", template);
        }
        assertThat(completeTemplates(driver)).containsExactly(template);
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
        ids.computeIfAbsent(driver, d -> new ArrayList<>()).add(id);
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

    @Test
    void anAbandonedBuildLeavesNothingAndPublishesNothingAndTheNextDriverBuildsIt() throws Exception {
        VmDriver driver = driver(TestingVm.imageDir());
        CountDownLatch booting = new CountDownLatch(1);
        CompletableFuture<PreparedTemplate> build = CompletableFuture.supplyAsync(
                () -> driver.prepareTemplateNow(Plan.NANO, PostgresVersion.DEFAULT, phase -> {
                    if (phase.startsWith("booting the microVM")) {
                        booting.countDown();
                    }
                }), runnable -> Thread.ofVirtual().name("template-build").start(runnable));
        assertThat(booting.await(2, java.util.concurrent.TimeUnit.MINUTES)).as("the build reached its boot").isTrue();
        List<String> building = List.copyOf(driver.templates().buildingIds());
        assertThat(building).hasSize(1);
        String id = building.getFirst();

        // what a shutdown hook does when the process is stopped mid-build: here as QEMU is being started
        assertThat(driver.abandonTemplateBuilds(Duration.ofSeconds(30))).as("the build ended within the bound").isTrue();

        org.assertj.core.api.Assertions.assertThatThrownBy(build::join)
                .hasMessageContaining("cannot build the template snapshot");
        TestingVm.assertNothingLeft(driver, id);
        assertThat(driver.networkPool().allocations()).as("network slots").doesNotContainKey(id);
        try (Stream<Path> left = Files.list(driver.templatesDir())) {
            assertThat(left.map(p -> p.getFileName().toString()))
                    .as("no template published, no staging directory left").allMatch(name -> name.endsWith(".lock"));
        }

        // the next process (here: another driver on the same templates directory) builds it as usual
        VmDriver next = driver(TestingVm.imageDir(), "10.214.42.0/24", driver.templatesDir());
        PreparedTemplate prepared = next.prepareTemplateNow(Plan.NANO, PostgresVersion.DEFAULT, ProgressListener.NONE);
        assertThat(prepared.alreadyReady()).isFalse();
        assertThat(next.templates().builds()).isEqualTo(1);
    }

    private VmDriver driver(Path imageDir) {
        return driver(imageDir, "10.214.40.0/24", null);
    }

    /** A driver with its own instances directory; its templates in {@code templatesDir}, or its own when null. */
    private VmDriver driver(Path imageDir, String networkPool, Path templatesDir) {
        TestingVm.requireImageAndRoot();
        Path dir = TestingDirectories.newWorkDir("vm");
        VmDriverConfig config = VmDriverConfig.defaults(
                        dir, imageDir, TestingDirectories.serviceUser(), Cgroups.detect("palisade"))
                .withNetworkPool(networkPool)
                .withBootTimeout(Duration.ofSeconds(120));
        VmDriver driver = templatesDir == null ? new VmDriver(config) : new VmDriver(config, templatesDir, true);
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
