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
 * {@code qom-set} on the group), eth0 = virtio-net on the namespace's tap, plus a virtio-rng and the platform's
 * virtio-serial control port; guest RAM optionally in a memory file, and optionally {@code -incoming} from a unix
 * socket (restore of a saved state). Immutable.
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
        String runAsUser,
        Memory memory,
        Path incomingSocket) {
    /** Unix socket paths longer than this do not fit in sockaddr_un. */
    static final int MAX_SOCKET_PATH = 100;

    /**
     * Guest RAM in a file ({@code memory-backend-file}): {@code shared} = the VM's own file, guest writes land in it
     * (suspend saves only device state); not shared = a private copy-on-write mapping of a template's file.
     */
    public record Memory(Path file, boolean shared) {
        public Memory {
            requireNonNull(file, "file is null");
        }
    }

    /** A VM with anonymous guest RAM that boots from scratch (no memory file, no incoming state). */
    public QemuCommand(Path qemuBinary, Accelerator accelerator, GuestImage image, Plan plan, Path dataVolume,
            InstancePaths paths, String vmName, long tscKhz, String runAsUser) {
        this(qemuBinary, accelerator, image, plan, dataVolume, paths, vmName, tscKhz, runAsUser, null, null);
    }

    public QemuCommand {
        requireNonNull(qemuBinary, "qemuBinary is null");
        requireNonNull(accelerator, "accelerator is null");
        requireNonNull(image, "image is null");
        requireNonNull(plan, "plan is null");
        requireNonNull(dataVolume, "dataVolume is null");
        requireNonNull(paths, "paths is null");
        requireNonNull(vmName, "vmName is null");
        List<Path> checked = new ArrayList<>(List.of(dataVolume, paths.dir(), image.dir()));
        if (memory != null) {
            checked.add(memory.file());
        }
        if (incomingSocket != null) {
            checked.add(incomingSocket);
        }
        for (Path path : checked) {
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
        args.addAll(List.of("-M", "microvm,pit=on,pic=on,rtc=on" + (memory == null ? "" : ",memory-backend=mem0")));
        args.addAll(accelerator.qemuArguments());
        args.addAll(List.of("-smp", Integer.toString(plan.cpu()), "-m", plan.memoryMb() + "M"));
        if (memory != null) {
            args.addAll(List.of("-object", "memory-backend-file,id=mem0,size=" + plan.memoryMb() + "M,mem-path="
                    + memory.file() + ",share=" + (memory.shared() ? "on" : "off")));
        }
        args.addAll(List.of("-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"));
        args.addAll(List.of("-chardev", "file,id=ser0,path=" + paths.serialLog(), "-serial", "chardev:ser0"));
        args.addAll(List.of("-qmp", "unix:" + paths.qmpSocket() + ",server=on,wait=off"));
        // the platform's control line into the guest (clock resync and entropy after a restore): a virtio-serial port
        // named palisade.ctl that only the guest's root helper reads. (A second UART loses its receive interrupt
        // across a save/restore every other time; virtio restores cleanly.)
        args.addAll(List.of("-chardev", "socket,id=ctl0,path=" + paths.controlSocket() + ",server=on,wait=off",
                "-device", "virtio-serial-device,max_ports=2",
                "-device", "virtserialport,chardev=ctl0,name=palisade.ctl"));
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
        if (incomingSocket != null) {
            // restore a saved state streamed in over this socket. It is created before QEMU drops to -runas (so it can
            // live in the root-only instance dir); exec: migration is impossible under the spawn=deny sandbox.
            args.addAll(List.of("-incoming", "unix:" + incomingSocket));
        }
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
