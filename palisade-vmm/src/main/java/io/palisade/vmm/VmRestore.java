package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Processes;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code provisionFrom} of the vm rung: the data volume is built from the prepared directory ({@link VolumeBuilder}),
 * the VM cold boots and PostgreSQL replays its WAL until it is promoted ({@link BootWatchdog#bootForRestore}), then the
 * management role is taken over ({@link ManagementHandover}). On any failure the QEMU is killed, the PostgreSQL log
 * tail is read from the volume, everything of the instance is destroyed and the directory removed; the exception
 * carries the log tail. Thread-safe for different ids (no state of its own; the caller serialises calls per id).
 */
final class VmRestore {
    private static final Logger log = LoggerFactory.getLogger(VmRestore.class);
    private static final int LOG_LINES = 15;
    private static final Pattern VERIFIER = Pattern.compile("SCRAM-SHA-256\\$[^'\\s]*");

    private final VmDriver driver;

    VmRestore(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    RunningInstance provisionFrom(InstanceSpec spec, TenantCredentials credentials, Path dataDirectory,
            ProgressListener progress) {
        requireNonNull(spec, "spec is null");
        requireNonNull(credentials, "credentials is null");
        requireNonNull(dataDirectory, "dataDirectory is null");
        requireNonNull(progress, "progress is null");
        String id = spec.id();
        InstancePaths paths = driver.paths(id);
        long start = System.nanoTime();
        boolean created = false;
        try {
            if (Files.exists(paths.dir())) {
                throw new PalisadeException(
                        ErrorCode.CONFLICT, "vm instance " + id + " already exists on this host; destroy it first");
            }
            VolumeBuilder.check(dataDirectory, spec.version());
            GuestImage image = GuestImage.load(driver.config().imageDir());
            Files.createDirectories(paths.dir());
            created = true;
            Files.setPosixFilePermissions(paths.dir(), PosixFilePermissions.fromString("rwx------"));
            progress.phase("building the data volume from the restored data directory");
            VolumeBuilder.Result volume = VolumeBuilder.build(image, spec.version(), dataDirectory,
                    paths.dir().resolve("volume-stage"), paths.dataVolume(), spec.plan().diskMb(),
                    GuestHba.firstBoot(image));
            progress.phase("booting the microVM; PostgreSQL replays the restored WAL before it accepts connections");
            BootWatchdog.Boot boot = driver.bootForRestore(spec, image, paths, progress);
            progress.phase("taking over the management role, setting credentials");
            long handoverStart = System.nanoTime();
            ManagementHandover.run(spec, credentials, image, paths, boot.endpoint());
            Map<String, String> details = new LinkedHashMap<>(boot.details());
            CreatePath.RESTORE.putInto(details);
            details.put("restored_data_bytes", Long.toString(volume.dataBytes()));
            details.put("volume_bytes", Long.toString(volume.volumeBytes()));
            details.put("volume_build_ms", Long.toString(volume.millis()));
            details.put("credentials_ms", Long.toString((System.nanoTime() - handoverStart) / 1_000_000));
            details.put("create_ms", Long.toString((System.nanoTime() - start) / 1_000_000));
            log.info("vm {} restored from a data directory in {} ms at {} ({})", id, details.get("create_ms"),
                    boot.endpoint(), details);
            return new RunningInstance(id, boot.endpoint(), Instant.now(), details);
        } catch (RuntimeException | IOException | SQLException e) {
            log.warn("restoring vm {} failed, removing what was created: {}", id, e.getMessage());
            List<String> tail = created ? logTailAfterFailure(id) : List.of();
            if (created) {
                try {
                    driver.destroy(id);
                } catch (RuntimeException cleanup) {
                    e.addSuppressed(cleanup);
                }
            }
            Processes.run(List.of("rm", "-rf", "--", dataDirectory.toString()), Duration.ofMinutes(10), null);
            ErrorCode code = e instanceof PalisadeException pe ? pe.errorCode() : ErrorCode.DRIVER_FAILURE;
            String message = "restoring vm " + id + " from " + dataDirectory + " failed: "
                    + (e instanceof PalisadeException ? e.getMessage() : VmDriver.safeMessage(e))
                    + (tail.isEmpty() ? "" : "; PostgreSQL log tail:\n  " + String.join("\n  ", tail));
            throw new PalisadeException(code, message, e);
        }
    }

    /**
     * The end of the PostgreSQL log (else of the serial console) once QEMU is gone. After a kill the newest log blocks
     * may sit only in the volume's journal, which debugfs does not read: e2fsck replays it first (the volume is about
     * to be deleted anyway). Verifiers a failed statement may have logged are masked.
     */
    private List<String> logTailAfterFailure(String id) {
        try {
            driver.abandonRestore(id);
            Path volume = driver.paths(id).dataVolume();
            List<String> lines = List.of();
            if (Files.exists(volume)) {
                VolumeTools.run(driver.qemuUser(id), volume, List.of("e2fsck", "-p", VolumeTools.DEVICE),
                        Duration.ofMinutes(2));
                lines = driver.postgresLogFromVolume(id, LOG_LINES);
            }
            if (lines.isEmpty()) {
                lines = Processes.tailFile(driver.paths(id).serialLog(), LOG_LINES);
            }
            List<String> masked = new ArrayList<>();
            for (String line : lines) {
                masked.add(VERIFIER.matcher(line).replaceAll("SCRAM-SHA-256\\$***"));
            }
            return masked;
        } catch (RuntimeException e) {
            log.debug("cannot read the PostgreSQL log of vm {}: {}", id, e.getMessage());
            return List.of();
        }
    }
}
