package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.AdminAccess;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code adminAccess} of the vm rung (backups, moves): the management role's endpoint and current secret of a running
 * VM, after checking once per QEMU process that the guest admits the role to replication connections. Thread-safe (a
 * concurrent map of checked ids).
 */
final class VmAdminAccess {
    private final VmDriver driver;
    /** Ids whose guest was checked to accept replication connections, with the QEMU pid it was checked for. */
    private final Map<String, Long> replicationChecked = new ConcurrentHashMap<>();

    VmAdminAccess(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    /** Forgets the replication check of an instance (its QEMU is gone, or it was renamed). */
    void forget(String id) {
        replicationChecked.remove(id);
    }

    /**
     * The guest's PostgreSQL at its namespace's veth address, as the image's management role with this VM's current
     * management secret. Checks once per QEMU process (one management login) that the guest's rules admit the role to
     * replication connections; volumes from images built before that rule fail with CONFLICT saying so.
     */
    AdminAccess access(String id) {
        Optional<Long> pid = driver.processes().findPid(id);
        if (pid.isEmpty()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "vm " + id + " is not running"
                    + (driver.isSuspended(id) ? " (suspended); resume it" : "; start it")
                    + " before connecting to it for backups");
        }
        InstancePaths paths = driver.paths(id);
        GuestImage image = GuestImage.load(driver.config().imageDir());
        Endpoint endpoint = driver.endpoint(id);
        try {
            if (!pid.get().equals(replicationChecked.get(id)) || Files.exists(paths.pendingManagementSecret())) {
                // also confirms a pending rotation
                try (Connection admin = GuestAdmin.adminConnection(id, paths, image, endpoint)) {
                    GuestHba.requireReplicationRule(admin, image.adminRole(), id);
                }
                replicationChecked.put(id, pid.get());
            }
            String secret = Files.exists(paths.managementSecret())
                    ? GuestAdmin.readSecret(paths.managementSecret())
                    : image.adminSecret(); // never rotated (a provision interrupted before it could)
            return new AdminAccess(new AdminAccess.Tcp(endpoint), image.adminRole(), Optional.of(secret));
        } catch (SQLException | IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot reach the management role of vm " + id
                    + " at " + endpoint + ": " + VmDriver.safeMessage(e), e);
        }
    }
}
