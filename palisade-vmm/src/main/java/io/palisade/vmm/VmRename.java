package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code rename} of the vm rung. A VM's lasting host state is its directory (volume, management secret, logs); what is
 * derived from the id (network namespace and veth, network pool slot, cgroup, sockets) exists only while it runs or is
 * suspended, and {@code start} recreates it for whatever id it is given. So a rename removes the derived state of the
 * old id and renames the directory (one atomic rename: a crash leaves the VM under one id or the other, whole). A
 * suspended VM's saved state is discarded: its volume was synced when it was suspended, so the next start cold boots
 * it with nothing committed lost (PostgreSQL crash recovery). Thread-safe for different ids (no state of its own; the
 * caller serialises calls per id).
 */
final class VmRename {
    private static final Logger log = LoggerFactory.getLogger(VmRename.class);

    private final VmDriver driver;

    VmRename(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    void rename(String fromId, String toId) {
        requireNonNull(fromId, "fromId is null");
        requireNonNull(toId, "toId is null");
        if (fromId.equals(toId)) {
            throw PalisadeException.invalid("cannot rename vm " + fromId + " to itself");
        }
        InstancePaths from = driver.paths(fromId);
        InstancePaths to = driver.paths(toId);
        if (!Files.isRegularFile(from.dataVolume())) {
            throw PalisadeException.notFound("vm instance " + fromId + " has no data volume on this host; nothing to "
                    + "rename");
        }
        if (driver.hasProcess(fromId)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "vm " + fromId + " is running; stop it before renaming it");
        }
        if (driver.listInstances().contains(toId) || Files.exists(to.dir())) {
            throw new PalisadeException(ErrorCode.CONFLICT, "vm " + toId + " already has state on this host; "
                    + "destroy it before renaming " + fromId + " to it");
        }
        boolean suspended = Files.exists(from.stateFile());
        // derived from the old id; start recreates all of it for the new one
        driver.network(fromId).teardown();
        driver.networkPool().release(fromId);
        driver.config().cgroups().find(driver.cgroupName(fromId)).ifPresent(Cgroups.Group::remove);
        VmFiles.deleteQuietly(driver.migrationSocket(fromId));
        VmFiles.discardSavedState(from);
        for (Path file : new Path[] {from.memoryFile(), from.qmpSocket(), from.pidFile(), from.controlSocket(),
                from.incomingSocket()}) {
            VmFiles.deleteQuietly(file);
        }
        driver.forget(fromId);
        driver.tenantUsers().remove(fromId); // the new id's QEMU runs as the new id's user
        try {
            Files.move(from.dir(), to.dir(), StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot rename " + from.dir() + " to " + to.dir()
                    + ": " + e.getMessage() + "; vm " + fromId + " is unchanged (stopped)", e);
        }
        log.info("vm {} renamed to {}{}", fromId, toId,
                suspended ? " (its saved suspend state was discarded: the next start cold boots it)" : "");
    }
}
