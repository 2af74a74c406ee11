package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.pgwire.PgServerException;
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
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code provision} of the vm rung: clone the template snapshot for the spec (see {@link TemplateCache}), or cold boot
 * when there is none or the clone fails ({@link CreatePath}); then, over the management connection, resync a clone's
 * clock if the control port did not, ensure the tenant's role and database, set its password as a SCRAM verifier and
 * rotate the management secret: for a clone of a template that holds the tenant, in one round trip over the login that
 * told the restore PostgreSQL answers ({@link CloneCredentials}). A failed create removes everything it made.
 * Thread-safe for different ids (no state of its own).
 */
final class VmCreate {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);

    private final VmDriver driver;
    private final boolean cloneCreate;

    VmCreate(VmDriver driver, boolean cloneCreate) {
        this.driver = requireNonNull(driver, "driver is null");
        this.cloneCreate = cloneCreate;
    }

    /** Whether creates clone template snapshots. */
    boolean clones() {
        return cloneCreate;
    }

    RunningInstance provision(InstanceSpec spec, TenantCredentials credentials, ProgressListener progress) {
        requireNonNull(spec, "spec is null");
        requireNonNull(credentials, "credentials is null");
        requireNonNull(progress, "progress is null");
        String id = spec.id();
        InstancePaths paths = driver.paths(id);
        if (Files.exists(paths.dir())) {
            throw new PalisadeException(
                    ErrorCode.CONFLICT, "vm instance " + id + " already exists on this host; destroy it first");
        }
        GuestImage image = GuestImage.load(driver.config().imageDir());
        Path template = image.templateVolume(spec.version());
        long start = System.nanoTime();
        CloneCredentials oneTrip = null;
        try {
            Files.createDirectories(paths.dir());
            Files.setPosixFilePermissions(paths.dir(), PosixFilePermissions.fromString("rwx------"));
            BootWatchdog.Boot boot = null;
            CreatePath createPath = CreatePath.COLD;
            ClockSync clockSync = null;
            String cloneError = null;
            long volumeMs = 0;
            Optional<TemplateCache.Template> snapshot =
                    cloneCreate ? driver.templates().template(spec, image, progress) : Optional.empty();
            if (snapshot.isPresent()) {
                if (credentials.username().equals(spec.username())
                        && snapshot.get().holdsTenant(spec.username(), spec.database())) {
                    oneTrip = new CloneCredentials(id, image, paths);
                }
                boolean hostFault = false; // this host's network, not the template: not counted against it
                try {
                    progress.phase("cloning the template snapshot");
                    // the volume copy (a cp process) overlaps the network's creation (ip and iptables processes)
                    CompletableFuture<Long> copy = copyVolume(id, snapshot.get().volume(), paths.dataVolume());
                    long networkStart = System.nanoTime();
                    try {
                        driver.snapshots().ensureNetwork(id);
                    } catch (RuntimeException e) {
                        awaitQuietly(copy); // before the fallback deletes the volume
                        hostFault = true;
                        throw e;
                    }
                    long networkMs = (System.nanoTime() - networkStart) / 1_000_000;
                    volumeMs = await(copy);
                    SnapshotRestore.Restored restored =
                            driver.snapshots().cloneFrom(spec, image, paths, snapshot.get(),
                                    oneTrip != null ? oneTrip::login : SnapshotRestore.PROBE);
                    restored.boot().details().put("network_ms", Long.toString(networkMs));
                    boot = restored.boot();
                    clockSync = restored.clockSync();
                    createPath = CreatePath.CLONE;
                    driver.templates().cloneSucceeded(snapshot.get());
                } catch (RuntimeException | IOException e) {
                    cloneError = VmDriver.safeMessage(e);
                    log.warn("vm {}: clone of template {} failed ({}); falling back to a cold boot", id,
                            snapshot.get().key(), cloneError);
                    driver.launcher().abandon(id);
                    if (oneTrip != null) {
                        oneTrip.close();
                        oneTrip = null;
                    }
                    VmFiles.deleteQuietly(paths.dataVolume());
                    boot = null;
                    if (!hostFault) {
                        driver.templates().cloneFailed(snapshot.get());
                    }
                }
            }
            if (boot == null) {
                progress.phase("copying the template data volume");
                long copyStart = System.nanoTime();
                VmFiles.createVolume(template, paths.dataVolume(), spec.plan().diskMb());
                volumeMs = (System.nanoTime() - copyStart) / 1_000_000;
                boot = driver.watchdog().boot(spec, image, paths, progress);
                CreatePath.COLD.putInto(boot.details());
                if (cloneError != null) {
                    boot.details().put("clone_error", cloneError);
                }
            }
            progress.phase("setting credentials");
            long credentialsStart = System.nanoTime();
            boolean credentialsSet = false;
            if (oneTrip != null && oneTrip.loggedIn() && createPath == CreatePath.CLONE
                    && clockSync == ClockSync.SERIAL) {
                boot.details().put("admin_login_ms", Long.toString(oneTrip.loginMs()));
                try {
                    oneTrip.apply(spec, credentials);
                    boot.details().put("credentials_round_trips", "1");
                    credentialsSet = true;
                } catch (PgServerException e) {
                    log.warn("vm {}: setting the clone's credentials in one round trip failed ({}); taking the full "
                            + "path", id, VmDriver.safeMessage(e));
                }
            }
            if (oneTrip != null) {
                oneTrip.close();
            }
            if (!credentialsSet) {
                setCredentials(spec, credentials, image, paths, boot, createPath, clockSync);
            }
            Map<String, String> details = new LinkedHashMap<>(boot.details());
            details.put("volume_copy_ms", Long.toString(volumeMs));
            details.put("credentials_ms", Long.toString((System.nanoTime() - credentialsStart) / 1_000_000));
            details.put("create_ms", Long.toString((System.nanoTime() - start) / 1_000_000));
            log.info("vm {} provisioned by {} in {} ms at {} ({})", id, createPath, details.get("create_ms"),
                    boot.endpoint(), details);
            return new RunningInstance(id, boot.endpoint(), Instant.now(), details);
        } catch (RuntimeException | IOException | SQLException e) {
            if (oneTrip != null) {
                oneTrip.close();
            }
            log.warn("provisioning vm {} failed, removing what was created: {}", id, e.getMessage());
            try {
                driver.destroy(id);
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            if (e instanceof PalisadeException pe) {
                throw pe;
            }
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "provisioning vm " + id + " failed: " + VmDriver.safeMessage(e), e);
        }
    }

    /**
     * The full path over a PgJDBC management login: a clone's clock resynced over SQL if the control port did not,
     * the tenant role and database ensured, the tenant password set as a verifier, the management secret rotated.
     */
    private static void setCredentials(InstanceSpec spec, TenantCredentials credentials, GuestImage image,
            InstancePaths paths, BootWatchdog.Boot boot, CreatePath createPath, ClockSync clockSync)
            throws SQLException, IOException {
        long loginStart = System.nanoTime();
        try (Connection admin = GuestAdmin.adminConnection(spec.id(), paths, image, boot.endpoint())) {
            boot.details().put("admin_login_ms", Long.toString((System.nanoTime() - loginStart) / 1_000_000));
            if (createPath == CreatePath.CLONE && clockSync != ClockSync.SERIAL) {
                // the clone's clock stood still since the template was saved; its random state is a copy
                boot.details().put("clock_offset_ms", Long.toString(GuestClock.resyncOverSql(admin, spec.id())));
                ClockSync.SQL.putInto(boot.details());
            }
            long tenantStart = System.nanoTime();
            GuestAdmin.ensureTenant(admin, spec);
            boot.details().put("tenant_ms", Long.toString((System.nanoTime() - tenantStart) / 1_000_000));
            GuestAdmin.setPasswordVerifier(admin, credentials.username(), credentials.password());
            GuestAdmin.rotateManagementSecret(admin, image, paths);
        }
    }

    /** Copies a template's volume on a virtual thread; the future holds how long it took (ms). */
    private static CompletableFuture<Long> copyVolume(String id, Path from, Path to) {
        CompletableFuture<Long> copy = new CompletableFuture<>();
        Thread.ofVirtual().name("vm-copy-" + id).start(() -> {
            long start = System.nanoTime();
            try {
                VmFiles.copySparse(from, to);
                copy.complete((System.nanoTime() - start) / 1_000_000);
            } catch (IOException | RuntimeException e) {
                copy.completeExceptionally(e);
            }
        });
        return copy;
    }

    private static long await(CompletableFuture<Long> copy) throws IOException {
        try {
            return copy.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            if (e.getCause() instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw e;
        }
    }

    private static void awaitQuietly(CompletableFuture<Long> copy) {
        try {
            copy.join();
        } catch (CompletionException e) {
            // the caller is failing already
        }
    }
}
