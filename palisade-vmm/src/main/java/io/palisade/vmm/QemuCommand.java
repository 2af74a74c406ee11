package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The QEMU {@code microvm} command line of one VM (no secrets on it, ever). Devices: vda = shared read-only rootfs,
 * vdb = the VM's data volume behind a throttle group {@code tg0} (node {@code data}, limits changeable live with QMP
 * {@code qom-set} on the group), eth0 = virtio-net on the namespace's tap, plus a virtio-rng. Immutable.
 */
public record QemuCommand(
        Path qemuBinary,
        Accelerator accelerator,
        GuestImage image,
        Plan plan,
        Path dataVolume,
        InstancePaths paths,
        String vmName,
        long tscKhz,
        String runAsUser) {
    /** Unix socket paths longer than this do not fit in sockaddr_un. */
    static final int MAX_SOCKET_PATH = 100;

    public QemuCommand {
        requireNonNull(qemuBinary, "qemuBinary is null");
        requireNonNull(accelerator, "accelerator is null");
        requireNonNull(image, "image is null");
        requireNonNull(plan, "plan is null");
        requireNonNull(dataVolume, "dataVolume is null");
        requireNonNull(paths, "paths is null");
        requireNonNull(vmName, "vmName is null");
        for (Path path : java.util.List.of(dataVolume, paths.dir(), image.dir())) {
            if (path.toString().contains(",")) {
                throw PalisadeException.invalid("QEMU option values cannot hold a comma: " + path);
            }
        }
        if (paths.qmpSocket().toString().length() > MAX_SOCKET_PATH) {
            throw PalisadeException.invalid(
                    "the QMP socket path " + paths.qmpSocket() + " is longer than " + MAX_SOCKET_PATH
                            + " characters; choose a shorter vm.instances-dir");
        }
    }

    /** The kernel command line; the guest reads its address and gateway from the palisade.* parameters. */
    public String kernelCommandLine() {
        List<String> parts = new ArrayList<>(List.of("console=ttyS0", "reboot=k", "panic=1", "quiet"));
        if (accelerator.kind() == Accelerator.Kind.TCG && tscKhz > 0) {
            // without these ~30 % of TCG boots hang in timer calibration (see docs/vm.md)
            parts.add("tsc_early_khz=" + tscKhz);
            parts.add("tsc=reliable");
        }
        parts.add("cryptomgr.notests");
        parts.add("palisade.ip=" + image.guestAddress() + "/30");
        parts.add("palisade.gw=" + image.guestGateway());
        return String.join(" ", parts);
    }

    /** Throttle-group properties for the plan: IOPS and bandwidth (MB/s, 10^6 bytes) caps; 0 means unlimited. */
    public String throttleGroup() {
        StringBuilder group = new StringBuilder("throttle-group,id=tg0");
        if (plan.iops() > 0) {
            group.append(",x-iops-total=").append(plan.iops());
        }
        if (plan.bandwidthMbps() > 0) {
            group.append(",x-bps-total=").append((long) plan.bandwidthMbps() * 1_000_000L);
        }
        return group.toString();
    }

    public List<String> arguments() {
        List<String> args = new ArrayList<>();
        args.add(qemuBinary.toString());
        args.addAll(List.of("-name", vmName));
        args.addAll(List.of("-M", "microvm,pit=on,pic=on,rtc=on"));
        args.addAll(accelerator.qemuArguments());
        args.addAll(List.of("-smp", Integer.toString(plan.cpu()), "-m", plan.memoryMb() + "M"));
        args.addAll(List.of("-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"));
        args.addAll(List.of("-chardev", "file,id=ser0,path=" + paths.serialLog(), "-serial", "chardev:ser0"));
        args.addAll(List.of("-qmp", "unix:" + paths.qmpSocket() + ",server=on,wait=off"));
        args.addAll(List.of("-kernel", image.kernel().toString(), "-initrd", image.initramfs().toString()));
        args.addAll(List.of("-append", kernelCommandLine()));
        args.addAll(List.of(
                "-drive", "id=root,file=" + image.rootfs() + ",format=raw,if=none,readonly=on",
                "-device", "virtio-blk-device,drive=root"));
        args.addAll(List.of(
                "-object", throttleGroup(),
                "-blockdev", "driver=file,filename=" + dataVolume + ",node-name=data-file,aio=threads",
                "-blockdev", "driver=raw,file=data-file,node-name=data-raw",
                "-blockdev", "driver=throttle,throttle-group=tg0,file=data-raw,node-name=data",
                "-device", "virtio-blk-device,drive=data"));
        args.addAll(List.of(
                "-netdev", "tap,id=n0,ifname=" + VmNetwork.TAP + ",script=no,downscript=no,vhost=off",
                "-device", "virtio-net-device,netdev=n0"));
        args.addAll(List.of(
                "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-device,rng=rng0"));
        if (runAsUser != null) {
            // QEMU opens its devices and files as root, then drops to this user for good. Its seccomp filter is
            // installed before that drop, so set*uid must stay allowed; after the drop (no capabilities left) those
            // calls cannot regain anything.
            args.addAll(List.of("-runas", runAsUser));
            args.addAll(List.of(
                    "-sandbox", "on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny"));
        } else {
            args.addAll(List.of("-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
        }
        return args;
    }
}
