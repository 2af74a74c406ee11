package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.Plan;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TestQemuCommand {
    private static final GuestImage IMAGE = new GuestImage(
            Path.of("/img"), "k1", Path.of("/img/vmlinux"), Path.of("/img/initramfs.cpio"), Path.of("/img/rootfs.ext4"),
            Map.of("16", Path.of("/img/data-16.ext4")), Path.of("/img/admin-secret"), "palisade_admin",
            "172.31.255.2", "172.31.255.1", 70, 70);

    private static QemuCommand command(Accelerator accelerator, Plan plan, String runAs, Path dir) {
        InstancePaths paths = new InstancePaths(dir);
        return new QemuCommand(Path.of("/usr/bin/qemu-system-x86_64"), accelerator, IMAGE, plan, paths.dataVolume(),
                paths, "pal-db-x", 2_596_150, runAs);
    }

    private static final Accelerator TCG = new Accelerator(Accelerator.Kind.TCG, "test");

    @Test
    void tcgCommandLine() {
        QemuCommand qemu = command(TCG, new Plan("custom", 2, 384, 1024, 500, 50), "palisade", Path.of("/vm/db-x"));
        List<String> args = qemu.arguments();
        String line = String.join(" ", args);
        assertThat(args.getFirst()).isEqualTo("/usr/bin/qemu-system-x86_64");
        assertThat(line).contains("-name pal-db-x", "-M microvm,pit=on,pic=on,rtc=on", "-accel tcg,thread=multi",
                "-smp 2", "-m 384M", "-nodefaults", "-no-reboot", "-qmp unix:/vm/db-x/qmp.sock,server=on,wait=off",
                "path=/vm/db-x/serial.log", "-kernel /img/vmlinux", "-initrd /img/initramfs.cpio",
                "file=/img/rootfs.ext4,format=raw,if=none,readonly=on",
                "throttle-group,id=tg0,x-iops-total=500,x-bps-total=50000000",
                "driver=throttle,throttle-group=tg0,file=data-raw,node-name=data",
                "filename=/vm/db-x/data.ext4", "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off",
                "-runas palisade", "spawn=deny", "resourcecontrol=deny", "obsolete=deny");
        // rootfs is vda, the data volume vdb: the order of the virtio-blk devices matters
        assertThat(line.indexOf("drive=root")).isLessThan(line.indexOf("drive=data"));
        assertThat(qemu.kernelCommandLine()).isEqualTo(
                "console=ttyS0 reboot=k panic=1 quiet tsc_early_khz=2596150 tsc=reliable cryptomgr.notests "
                        + "palisade.ip=172.31.255.2/30 palisade.gw=172.31.255.1");
    }

    @Test
    void kvmAndNoCaps() {
        Accelerator kvm = new Accelerator(Accelerator.Kind.KVM, "test");
        QemuCommand qemu = command(kvm, new Plan("custom", 1, 256, 1024, 0, 0), null, Path.of("/vm/db-x"));
        assertThat(qemu.kernelCommandLine()).doesNotContain("tsc_early_khz");
        assertThat(qemu.throttleGroup()).isEqualTo("throttle-group,id=tg0");
        String line = String.join(" ", qemu.arguments());
        assertThat(line).contains("-accel kvm -cpu host").doesNotContain("-runas");
        assertThat(line).contains("elevateprivileges=deny");
    }

    @Test
    void rejectsPathsQemuCannotTake() {
        assertThatThrownBy(() -> command(TCG, Plan.NANO, null, Path.of("/vm,x/db-x")))
                .hasMessageContaining("comma");
        assertThatThrownBy(() -> command(TCG, Plan.NANO, null, Path.of("/" + "x".repeat(100) + "/db-x")))
                .hasMessageContaining("shorter vm.instances-dir");
    }
}
