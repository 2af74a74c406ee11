package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** e2fsprogs on a guest-written volume run as the service user, on a real ext4 image (no QEMU). */
class TestVolumeTools {
    @TempDir
    Path dir;

    @Test
    void debugfsAndE2fsckRunAsTheServiceUserAndTheVolumeIsGivenBack() throws IOException {
        ServiceUser user = ServiceUser.resolve(ServiceUser.DEFAULT_NAME);
        Path content = Files.createDirectories(dir.resolve("content/log"));
        Files.writeString(content.resolve("postgresql.log"), "LOG:  database system is ready\n");
        // like an instance directory: closed to everyone but root
        Path instance = Files.createDirectory(dir.resolve("instance"));
        Files.setPosixFilePermissions(instance, PosixFilePermissions.fromString("rwx------"));
        Path volume = instance.resolve("data.ext4");
        Processes.check(List.of("mkfs.ext4", "-q", "-F", "-d", dir.resolve("content").toString(), volume.toString(),
                "8M"), Duration.ofMinutes(1));
        Files.setPosixFilePermissions(volume, PosixFilePermissions.fromString("rw-------"));
        int owner = (Integer) Files.getAttribute(volume, "unix:uid");

        Processes.Result who = VolumeTools.run(user, volume, List.of("id", "-u"), Duration.ofSeconds(10));
        assertThat(who.output().strip()).isEqualTo(Integer.toString(user.uid()));

        Processes.Result log = VolumeTools.run(user, volume,
                List.of("debugfs", "-c", "-R", "cat /log/postgresql.log", VolumeTools.DEVICE), Duration.ofSeconds(30));
        assertThat(log.ok()).as(log.output()).isTrue();
        assertThat(log.output()).contains("database system is ready");

        Processes.Result fsck = VolumeTools.run(user, volume, List.of("e2fsck", "-f", "-p", VolumeTools.DEVICE),
                Duration.ofMinutes(1));
        assertThat(fsck.ok()).as(fsck.output()).isTrue();

        assertThat((Integer) Files.getAttribute(volume, "unix:uid")).isEqualTo(owner);
        assertThat(Files.getPosixFilePermissions(volume)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
    }
}
