package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;

/** The files of one VM under {@code <instances-dir>/<id>/}. Immutable. */
public record InstancePaths(Path dir) {
    public InstancePaths {
        requireNonNull(dir, "dir is null");
    }

    public static InstancePaths of(Path instancesDir, String id) {
        return new InstancePaths(instancesDir.resolve(id));
    }

    public Path dataVolume() {
        return dir.resolve("data.ext4");
    }

    public Path qmpSocket() {
        return dir.resolve("qmp.sock");
    }

    public Path serialLog() {
        return dir.resolve("serial.log");
    }

    /** The serial log of the previous boot attempt, kept for diagnosis. */
    public Path previousSerialLog() {
        return dir.resolve("serial.prev.log");
    }

    /** QEMU's own stdout and stderr. */
    public Path qemuLog() {
        return dir.resolve("qemu.log");
    }

    public Path pidFile() {
        return dir.resolve("qemu.pid");
    }

    /** The per-VM secret of the management role (mode 600). */
    public Path managementSecret() {
        return dir.resolve("mgmt-secret");
    }

    /** A rotated management secret not yet confirmed by the guest. */
    public Path pendingManagementSecret() {
        return dir.resolve("mgmt-secret.new");
    }
}
