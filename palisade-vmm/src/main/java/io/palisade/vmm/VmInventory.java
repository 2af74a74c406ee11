package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.Processes;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * What the vm rung has on this host: every instance id with a directory, a network slot, a QEMU process or an orphan
 * namespace in this driver's pool (template VMs being built excluded), and the resources one instance uses.
 * Thread-safe (no state of its own; reads the file system, {@code /proc} and cgroups).
 */
final class VmInventory {
    private final VmDriver driver;

    VmInventory(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    Set<String> list() {
        Set<String> ids = new TreeSet<>();
        try (var dirs = Files.list(driver.config().instancesDir())) {
            dirs.filter(Files::isDirectory)
                    .map(p -> p.getFileName().toString())
                    .filter(name -> !name.startsWith("."))
                    .forEach(ids::add);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot list " + driver.config().instancesDir(), e);
        }
        // networks and processes whose directory is gone (a crash in the middle of destroy)
        ids.addAll(driver.networkPool().allocations().keySet());
        ids.addAll(driver.processes().qemuProcesses().keySet());
        ids.addAll(QemuProcesses.orphanNamespaces(ids, driver.networkPool()));
        // a template snapshot being built is this driver's own work, not an orphan for the reconciler to remove (a
        // crashed build's leftovers are listed, and removed, once no build runs)
        ids.removeAll(driver.templates().buildingIds());
        return ids;
    }

    InstanceStats stats(String id) {
        Optional<Long> pid = driver.processes().findPid(id);
        long disk = VmFiles.allocatedBytes(driver.paths(id).dataVolume());
        if (pid.isEmpty()) {
            return new InstanceStats(false, -1, -1, -1, -1, disk);
        }
        long uptime = ProcessHandle.of(pid.get())
                .flatMap(h -> h.info().startInstant())
                .map(s -> Duration.between(s, Instant.now()).toSeconds())
                .orElse(-1L);
        long cpu = driver.config().cgroups().find(driver.cgroupName(id)).map(Cgroups.Group::cpuMillis).orElse(-1L);
        return new InstanceStats(true, pid.get(), uptime, cpu, Processes.rssBytes(pid.get()), disk);
    }
}
