package io.palisade.vmm;

import io.palisade.host.Processes;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.TenantCredentials;
import java.io.IOException;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Set;

/**
 * Takes over the management role of a guest booted from a restored data directory. The directory's roles are the
 * SOURCE database's, so the management role's password is the source VM's secret (or none, from the process rung),
 * which this VM's host does not have. The volume is built with {@link GuestHba#firstBoot} rules (the management role
 * from the host only, no password) and the image's rules staged beside them. Over that single trusted connection the
 * handover sets a fresh per-VM management secret (as every provision does), makes sure the tenant role and database
 * exist and sets the tenant's password (as a SCRAM verifier), moves the image's rules into place and reloads, then
 * proves the trust is gone: a login without the secret is refused, one with it succeeds, and the rules on disk
 * let nobody in without a password. Stateless.
 */
final class ManagementHandover {
    private static final Duration RELOAD_WAIT = Duration.ofSeconds(15);
    /** PgJDBC's "the server asked for a password and none was given", and the server's own refusals. */
    private static final Set<String> REFUSED = Set.of("08004", "28P01", "28000");

    private ManagementHandover() {}

    static void run(InstanceSpec spec, TenantCredentials credentials, GuestImage image, InstancePaths paths,
            Endpoint endpoint) throws SQLException, IOException {
        try (Connection trusted = GuestAdmin.connect(endpoint, image.adminRole(), null)) {
            try (Statement s = trusted.createStatement();
                    ResultSet rs = s.executeQuery("SELECT rolsuper, pg_is_in_recovery() FROM pg_roles "
                            + "WHERE rolname = current_user")) {
                if (!rs.next() || !rs.getBoolean(1)) {
                    throw new PalisadeException(ErrorCode.INVALID_REQUEST, "the restored data directory's "
                            + image.adminRole() + " role is not a superuser; the vm rung cannot manage this database");
                }
                if (rs.getBoolean(2)) {
                    throw new PalisadeException(ErrorCode.INVALID_REQUEST, "the restored server accepts connections "
                            + "but is still in recovery (hot standby); the data directory must end recovery with "
                            + "hot_standby = off and recovery_target_action = 'promote'");
                }
            }
            GuestAdmin.rotateManagementSecret(trusted, image, paths);
            GuestAdmin.ensureTenant(trusted, spec);
            GuestAdmin.setPasswordVerifier(trusted, credentials.username(), credentials.password());
            GuestHba.installStaged(trusted);
        }
        awaitTrustGone(image, endpoint);
        try (Connection admin = GuestAdmin.connect(endpoint, image.adminRole(),
                GuestAdmin.readSecret(paths.managementSecret()))) {
            if (GuestHba.hostTrustOrBrokenRules(admin) != 0) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the guest's pg_hba.conf still lets a network "
                        + "peer in without a password, or has errors, after the image's rules were installed");
            }
        }
    }

    /** Waits until the reloaded rules are in force: a management login without a password is refused. */
    private static void awaitTrustGone(GuestImage image, Endpoint endpoint) throws SQLException {
        long deadline = System.nanoTime() + RELOAD_WAIT.toNanos();
        while (true) {
            try (Connection ignored = GuestAdmin.connect(endpoint, image.adminRole(), null)) {
                if (System.nanoTime() > deadline) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the guest still trusts the host's "
                            + image.adminRole() + " logins " + RELOAD_WAIT.toSeconds() + " s after its pg_hba.conf "
                            + "was replaced and reloaded");
                }
            } catch (SQLException e) {
                if (REFUSED.contains(e.getSQLState())) {
                    return;
                }
                throw e;
            }
            Processes.sleep(Duration.ofMillis(100));
        }
    }
}
