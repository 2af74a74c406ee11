package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The boot watchdog and the cleanup of failed provisions, with a stand-in for QEMU (a shell script that behaves like a
 * hung, panicking or broken VM) and a stand-in image: no guest image needed, real namespaces and cgroups.
 */
class TestVmBootWatchdog {
    private static final Plan PLAN = new Plan("tiny", 1, 256, 64, 0, 0);
    private Path work;

    @BeforeEach
    void setUp() throws IOException {
        if (ServiceUser.currentUid() != 0) {
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError("CI runs as root; these tests must not skip there");
            }
            System.err.println("SKIPPING: the vm driver needs root");
            Assumptions.abort("needs root");
        }
        work = TestingDirectories.newWorkDir("vm-watchdog");
        Path image = Files.createDirectories(work.resolve("image"));
        for (String file : new String[] {"vmlinux", "initramfs.cpio", "rootfs.ext4", "admin-secret"}) {
            Files.writeString(image.resolve(file), "stand-in\n");
        }
        try (var raf = new java.io.RandomAccessFile(image.resolve("data-16.ext4").toFile(), "rw")) {
            raf.setLength(64L * 1024 * 1024);
        }
        Files.writeString(image.resolve("manifest.json"),
                "{\"key\":\"fake\",\"pg\":{\"16\":{\"volume\":\"data-16.ext4\"}},\"admin_role\":\"palisade_admin\","
                        + "\"guest_ip\":\"172.31.255.2/30\",\"guest_gw\":\"172.31.255.1\"}");
    }

    @AfterEach
    void tearDown() {
        TestingDirectories.deleteRecursively(work);
    }

    /** A driver whose "QEMU" is {@code script} (it gets QEMU's arguments; $SERIAL is the serial log path). */
    private VmDriver driver(String script) throws IOException {
        return driver(script, Duration.ofSeconds(6));
    }

    private VmDriver driver(String script, Duration bootTimeout) throws IOException {
        Path fake = work.resolve("fake-qemu");
        Files.writeString(fake, "#!/bin/sh\nSERIAL=$(printf '%s\\n' \"$@\" | sed -n 's/^file,id=ser0,path=//p')\n"
                + script + "\n");
        Files.setPosixFilePermissions(fake, PosixFilePermissions.fromString("rwxr-xr-x"));
        VmDriverConfig defaults = VmDriverConfig.defaults(work.resolve("instances"), work.resolve("image"),
                TestingDirectories.serviceUser(), Cgroups.detect("palisade"));
        // cold boots only: these tests are about the boot watchdog, not template snapshots
        return new VmDriver(new VmDriverConfig(defaults.instancesDir(), defaults.imageDir(), defaults.serviceUser(),
                defaults.cgroups(), VmDriverConfig.AcceleratorMode.TCG, bootTimeout, "10.214.4.0/24", 0,
                fake, 2, Duration.ofSeconds(2), Duration.ofSeconds(6)), work.resolve("templates"), false);
    }

    private static InstanceSpec spec(String id) {
        return new InstanceSpec(id, PostgresVersion.DEFAULT, PLAN, "app", "app");
    }

    private static TenantCredentials credentials() {
        return new TenantCredentials("app", "app", TestingVm.randomSecret());
    }

    @Test
    void aGuestThatHangsBeforeTheInitramfsIsKilledAndRetriedTwice() throws IOException {
        VmDriver driver = driver("echo 'tsc: Marking TSC unstable' > \"$SERIAL\"; exec sleep 60");
        String id = "db-twdhang";
        long start = System.nanoTime();
        assertThatThrownBy(() -> driver.provision(spec(id), credentials(), ProgressListener.NONE))
                .hasMessageContaining("did not boot after 3 attempts")
                .hasMessageContaining("no 'PALISADE-BOOT initramfs' within 3 s")
                .hasMessageContaining("Marking TSC unstable");
        assertThat(driver.watchdogRetries()).isEqualTo(2);
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
        TestingVm.assertNothingLeft(driver, id);
    }

    @Test
    void aGuestThatDiesIsRetriedAndAQemuThatRefusesToStartIsNot() throws IOException {
        VmDriver panicking =
                driver("echo 'PALISADE-BOOT initramfs' > \"$SERIAL\"; echo 'Kernel panic' >> \"$SERIAL\"; exit 0");
        assertThatThrownBy(() -> panicking.provision(spec("db-twdpanic"), credentials(), ProgressListener.NONE))
                .hasMessageContaining("did not boot after 3 attempts")
                .hasMessageContaining("Kernel panic");
        assertThat(panicking.watchdogRetries()).isEqualTo(2);
        TestingVm.assertNothingLeft(panicking, "db-twdpanic");

        VmDriver broken = driver("echo 'qemu-system-x86_64: -blockdev: Could not open' >&2; exit 1");
        assertThatThrownBy(() -> broken.provision(spec("db-twdbroken"), credentials(), ProgressListener.NONE))
                .hasMessageContaining("QEMU exited with code 1")
                .hasMessageContaining("Could not open");
        assertThat(broken.watchdogRetries()).isZero();
        TestingVm.assertNothingLeft(broken, "db-twdbroken");
    }

    @Test
    void aColdBootWhoseReadyMarkerNeverComesIsProbedAfterTheGrace() throws IOException {
        // the stand-in guest says postgres-started and then never "ready" (as if a kernel message broke that line);
        // its "PostgreSQL" (busybox nc, on the guest's address, in the VM's namespace itself, whose input it opens)
        // answers AuthenticationOk
        Path answer = work.resolve("answer-auth-ok");
        Files.writeString(answer, "#!/bin/sh\nprintf 'R\\000\\000\\000\\010\\000\\000\\000\\000'\n");
        Files.setPosixFilePermissions(answer, PosixFilePermissions.fromString("rwxr-xr-x"));
        VmDriver driver = driver("echo 'PALISADE-BOOT initramfs' > \"$SERIAL\"\n"
                + "echo 'PALISADE-BOOT postgres-started' >> \"$SERIAL\"\n"
                + "ip addr add 172.31.255.2/32 dev lo\n"
                + "iptables -I INPUT -p tcp -d 172.31.255.2 --dport 5432 -j ACCEPT\n"
                + "exec busybox nc -ll -p 5432 -e " + answer, Duration.ofSeconds(12));
        String id = "db-twdnoready";
        Files.createDirectories(driver.paths(id).dir());
        Files.writeString(driver.paths(id).dataVolume(), "stand-in\n");
        try {
            Map<String, String> details = driver.start(spec(id), ProgressListener.NONE).details();
            assertThat(details).doesNotContainKey("boot_ready_ms").containsKey("boot_postgres_started_ms");
            long answered = Long.parseLong(details.get("boot_pg_answers_ms"));
            long started = Long.parseLong(details.get("boot_postgres_started_ms"));
            assertThat(answered - started).as("ms from postgres-started to the first probe that was answered")
                    .isBetween(BootWatchdog.READY_MARKER_GRACE.toMillis(), 11_000L);
            assertThat(driver.watchdogRetries()).isZero();
        } finally {
            driver.destroy(id);
        }
        TestingVm.assertNothingLeft(driver, id);
    }

    @Test
    void orphanNetworksInThisPoolAreFoundAndDestroyedOthersAreLeftAlone() throws IOException {
        VmDriver driver = driver("exec sleep 60");
        String ours = "db-tworphan";
        String theirs = "db-tworphan-other";
        VmNetwork orphan = driver.network(ours);
        VmNetwork foreign = driver.network(theirs);
        try {
            // as if palisade crashed after deleting the instance dir and the slot file
            orphan.create(new NetworkPool("10.214.4.0/24", work.resolve("lost-slots")).allocate(ours));
            foreign.create(new NetworkPool("10.214.5.0/24", work.resolve("other-slots")).allocate(theirs));
            assertThat(driver.listInstances()).contains(ours).doesNotContain(theirs);
            driver.destroy(ours);
            TestingVm.assertNothingLeft(driver, ours);
            assertThat(foreign.namespaceExists()).isTrue();
        } finally {
            orphan.teardown();
            foreign.teardown();
        }
    }

    @Test
    void provisionRefusesAnExistingInstanceAndAMissingImageIsExplained() throws IOException {
        VmDriver driver = driver("exec sleep 60");
        Files.createDirectories(work.resolve("instances/db-twdexists"));
        assertThatThrownBy(() -> driver.provision(spec("db-twdexists"), credentials(), ProgressListener.NONE))
                .hasMessageContaining("already exists");
        driver.destroy("db-twdexists");
        Files.delete(work.resolve("image/manifest.json"));
        assertThatThrownBy(() -> driver.provision(spec("db-twdnoimage"), credentials(), ProgressListener.NONE))
                .hasMessageContaining("guest/build.sh");
        assertThat(driver.probe().usable()).isFalse();
        assertThat(driver.probe().reason()).contains("guest/build.sh");
    }
}
