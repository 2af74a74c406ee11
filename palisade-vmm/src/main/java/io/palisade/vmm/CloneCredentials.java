package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.pgwire.PgConnection;
import io.palisade.pgwire.PgServerException;
import io.palisade.pgwire.PgTarget;
import io.palisade.pgwire.TenantBootstrap;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.TenantCredentials;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * The credentials of a fresh clone in one round trip. The management login (the image's template secret, the
 * lightweight pgwire client, no TLS over the VM's own veth) doubles as the readiness check after the restore, so the
 * guest starts one backend instead of a probe's plus the login's; then one simple-query string, one implicit
 * transaction and one commit ({@code synchronous_commit = local}) takes from the tenant role whatever reaches beyond
 * its own objects, sets its password as a SCRAM verifier and rotates the management secret: the same statements
 * {@link GuestAdmin} runs one by one on a cold create. Only for a template that holds the spec's tenant role (no
 * superuser) and database ({@link TemplateCache.Template#holdsTenant}); every other create takes {@link GuestAdmin}'s
 * path.
 *
 * <p>Not thread-safe: one create owns an instance; {@link #close()} may come from any thread.
 */
final class CloneCredentials implements AutoCloseable {
    private static final Duration LOGIN_TIMEOUT = Duration.ofSeconds(2);

    private final String id;
    private final GuestImage image;
    private final InstancePaths paths;
    private volatile PgConnection admin;
    private long loginNanos;

    CloneCredentials(String id, GuestImage image, InstancePaths paths) {
        this.id = requireNonNull(id, "id is null");
        this.image = requireNonNull(image, "image is null");
        this.paths = requireNonNull(paths, "paths is null");
    }

    /**
     * A {@link SnapshotRestore.Answer}: logs in as the management role with the template secret and keeps the
     * connection; false while PostgreSQL does not answer (no connection, starting up); throws when it refuses the
     * template secret (then this is no clone of that template).
     */
    boolean login(Endpoint endpoint) {
        if (admin != null) {
            return true;
        }
        String secret;
        try {
            secret = GuestAdmin.readSecret(image.adminSecretFile());
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot read the image's management secret "
                    + image.adminSecretFile() + " for vm " + id + "; check the guest image", e);
        }
        long start = System.nanoTime();
        try {
            admin = PgConnection.open(new PgTarget.Tcp(endpoint.host(), endpoint.port()), image.adminRole(),
                    Optional.of(secret), Map.of("database", GuestAdmin.MANAGEMENT_DATABASE,
                            "application_name", "palisade-vm-driver"), LOGIN_TIMEOUT);
            loginNanos = System.nanoTime() - start;
            return true;
        } catch (PgServerException e) {
            // 57P03: starting up, shutting down or in recovery; 53300: too many connections
            if ("57P03".equals(e.sqlState()) || "53300".equals(e.sqlState())) {
                return false;
            }
            throw e;
        } catch (PalisadeException e) {
            return false; // not answering yet: no connection, or no complete login in time
        }
    }

    /** Whether {@link #login} succeeded. */
    boolean loggedIn() {
        return admin != null;
    }

    /** How long the successful login took (TCP connect to the end of SCRAM), in ms. */
    long loginMs() {
        return loginNanos / 1_000_000;
    }

    /**
     * In one round trip: the tenant role stripped of powers, its password set as a SCRAM verifier, the management
     * secret rotated (written as the pending secret first, confirmed once committed). A statement the server rejects
     * changes nothing (one transaction; the pending secret is removed) and is thrown as a {@link PgServerException}:
     * the caller may take the full path then. An I/O failure closes the connection and is thrown.
     */
    void apply(InstanceSpec spec, TenantCredentials credentials) throws IOException {
        requireNonNull(spec, "spec is null");
        requireNonNull(credentials, "credentials is null");
        PgConnection connection = admin;
        if (connection == null) {
            throw new IllegalStateException("no management login to vm " + id);
        }
        String secret = GuestAdmin.newSecret();
        String sql = String.join("; ", TenantBootstrap.LOCAL_COMMIT, TenantBootstrap.stripPowers(spec.username()),
                TenantBootstrap.setPassword(credentials.username(), credentials.password()),
                TenantBootstrap.setPassword(image.adminRole(), secret));
        VmFiles.writePrivate(paths.pendingManagementSecret(), secret, true);
        try {
            connection.execute(sql);
        } catch (PgServerException e) {
            VmFiles.deleteQuietly(paths.pendingManagementSecret()); // rolled back: the template secret still holds
            throw e;
        }
        Files.move(paths.pendingManagementSecret(), paths.managementSecret(), StandardCopyOption.REPLACE_EXISTING,
                StandardCopyOption.ATOMIC_MOVE);
    }

    @Override
    public void close() {
        PgConnection connection = admin;
        admin = null;
        if (connection != null) {
            connection.close();
        }
    }
}
