package io.palisade.vmm;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * The guest's client-authentication rules as the host manages them over the management connection (superuser): the
 * first-boot rules of a restored directory, the swap to the image's rules, and checks on the rules in force. Reads use
 * {@code pg_hba_file_rules} (the file on disk); ALTER SYSTEM cannot change {@code pg_hba.conf}. Stateless.
 */
final class GuestHba {
    private GuestHba() {}

    /**
     * The {@code pg_hba.conf} of a restored directory's first boot: the management role, to the management database,
     * from the guest link's host end only, without a password (the restored role holds the source's secret). Every
     * connection the host makes through the VM's namespace arrives from that address (SNAT on the tap); the guest has
     * no other peer. Nothing else may log in.
     */
    static String firstBoot(GuestImage image) {
        return "# palisade: first boot of a restored data directory. Only the host may log in, as the management\n"
                + "# role; replaced by the image's pg_hba.conf before the database is handed out.\n"
                + "host  " + GuestAdmin.MANAGEMENT_DATABASE + "  " + image.adminRole() + "  " + image.guestGateway()
                + "/32  trust\n";
    }

    /**
     * Moves the image's rules (staged as {@link VolumeBuilder#STAGED_HBA} next to {@code hba_file}) into place, as the
     * guest's postgres user, and reloads the server's configuration. The move is atomic: the file is whole, old or new.
     */
    static void installStaged(Connection admin) throws SQLException {
        String hbaFile;
        try (Statement s = admin.createStatement(); ResultSet rs = s.executeQuery("SHOW hba_file")) {
            rs.next();
            hbaFile = rs.getString(1);
        }
        if (!hbaFile.matches("/[A-Za-z0-9/._-]+") || !hbaFile.endsWith("/pg_hba.conf")) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "unexpected hba_file '" + hbaFile + "' in the guest");
        }
        String staged = hbaFile.substring(0, hbaFile.length() - "pg_hba.conf".length()) + VolumeBuilder.STAGED_HBA;
        try (Statement s = admin.createStatement()) {
            s.execute("COPY (SELECT 1) TO PROGRAM 'mv -f " + staged + " " + hbaFile + "'");
            s.execute("SELECT pg_reload_conf()");
        }
    }

    /** How many rules in the file on disk let a network peer in without a password, and how many have errors. */
    static int hostTrustOrBrokenRules(Connection admin) throws SQLException {
        try (Statement s = admin.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL "
                        + "OR (type LIKE 'host%' AND auth_method IN ('trust', 'password'))")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /** Whether a rule admits {@code role} to replication connections over the network. */
    static boolean hasReplicationRule(Connection admin, String role) throws SQLException {
        try (PreparedStatement s = admin.prepareStatement("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL "
                + "AND type LIKE 'host%' AND 'replication' = ANY(database) AND auth_method <> 'reject' "
                + "AND (? = ANY(user_name) OR 'all' = ANY(user_name))")) {
            s.setString(1, role);
            try (ResultSet rs = s.executeQuery()) {
                rs.next();
                return rs.getInt(1) > 0;
            }
        }
    }

    /** Fails with what to do when the guest's rules do not let the management role replicate. */
    static void requireReplicationRule(Connection admin, String role, String id) throws SQLException {
        if (!hasReplicationRule(admin, role)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "vm " + id + " does not accept replication connections "
                    + "for " + role + ": its volume was made from a guest image built before pg_hba.conf had the "
                    + "'host replication " + role + "' line, so WAL streaming and base backups cannot reach it; "
                    + "restore or fork it into a new database (which gets the current image's rules) or recreate it");
        }
    }
}
