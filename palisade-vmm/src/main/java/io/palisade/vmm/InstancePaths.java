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

    /** Guest RAM of the VM ({@code memory-backend-file}, share=on): on disk, so a suspended VM holds no RAM. */
    public Path memoryFile() {
        return dir.resolve("memory.ram");
    }

    /** The device state of a suspended VM; present only when complete (written as {@code .tmp}, then renamed). */
    public Path stateFile() {
        return dir.resolve("suspend.state");
    }

    /** A saved state being written. */
    public Path partialStateFile() {
        return dir.resolve("suspend.state.tmp");
    }

    /**
     * A clone's first saved state, RAM included, while {@link StateCompaction} moves that RAM into the clone's own
     * memory file.
     */
    public Path fullStateFile() {
        return dir.resolve("suspend.state.full");
    }

    /** A saved state taken by a resume: never resumed again, deleted once QEMU has read it. */
    public Path consumedStateFile() {
        return dir.resolve("suspend.state.consumed");
    }

    /**
     * How the state was saved: {@code ignore-shared} (RAM is in {@link #memoryFile()}) or {@code full} (RAM is in the
     * state stream: a clone whose RAM was a private mapping of its template).
     */
    public Path stateModeFile() {
        return dir.resolve("suspend.mode");
    }

    /** The unix socket a restoring QEMU listens on for its saved state. */
    public Path incomingSocket() {
        return dir.resolve("incoming.sock");
    }

    /** The guest's virtio-serial control port (palisade.ctl): the host's line for clock resync after a restore. */
    public Path controlSocket() {
        return dir.resolve("ctl.sock");
    }
}
