package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Processes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The guest's PostgreSQL log: over the management connection while the VM runs, read from the stopped volume with
 * {@code debugfs} (as the VM's own user, read-only) otherwise, the serial console as the last resort. Thread-safe (no
 * state of its own).
 */
final class GuestLogs {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);

    private final VmDriver driver;

    GuestLogs(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    List<String> logTail(String id, int lines) {
        List<String> postgresLog = List.of();
        try {
            postgresLog = driver.isRunning(id) ? overSql(id, lines) : fromVolume(id, lines);
        } catch (RuntimeException e) {
            log.debug("cannot read the PostgreSQL log of vm {}: {}", id, e.getMessage());
        }
        if (!postgresLog.isEmpty()) {
            return postgresLog;
        }
        return Processes.tailFile(driver.paths(id).serialLog(), lines);
    }

    private List<String> overSql(String id, int lines) {
        try (Connection admin = driver.managementConnection(id)) {
            return GuestAdmin.postgresLog(admin, lines);
        } catch (SQLException e) {
            return List.of();
        }
    }

    List<String> fromVolume(String id, int lines) {
        Path volume = driver.paths(id).dataVolume();
        if (!Files.exists(volume)) {
            return List.of();
        }
        // read-only catastrophic mode: never writes to the image; as the VM's own user, not root (the guest wrote it)
        Processes.Result result = VolumeTools.run(driver.qemuUser(id), volume,
                List.of("debugfs", "-c", "-R", "cat /log/postgresql.log", VolumeTools.DEVICE), Duration.ofSeconds(30));
        if (!result.ok()) {
            return List.of();
        }
        String text = result.output().lines()
                .filter(l -> !l.startsWith("debugfs ") && !l.contains("catastrophic mode"))
                .reduce((a, b) -> a + "\n" + b)
                .orElse("");
        return GuestAdmin.lastLines(text, lines);
    }
}
