package io.palisade.vmm;

import io.palisade.pgwire.TenantBootstrap;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;

/**
 * The guest's PostgreSQL as the image's management role (PgJDBC over the VM's own veth, never leaving the host):
 * logging in with the VM's current, pending or template secret, the tenant role and database, passwords as SCRAM
 * verifiers, rotation of the management secret, the PostgreSQL log. Stateless static helpers; thread-safe (each call
 * works on the connection it is given; callers serialise work on one VM).
 */
final class GuestAdmin {
    static final String MANAGEMENT_DATABASE = "postgres";
    private static final SecureRandom RANDOM = new SecureRandom();

    private GuestAdmin() {}

    /**
     * A management connection with the VM's secret: its rotated one, a pending rotation (confirmed here when it
     * works), else the image's template secret (never rotated yet).
     */
    static Connection adminConnection(String id, InstancePaths paths, GuestImage image, Endpoint endpoint)
            throws SQLException {
        List<Path> candidates = new ArrayList<>();
        if (Files.exists(paths.managementSecret())) {
            candidates.add(paths.managementSecret());
        }
        if (Files.exists(paths.pendingManagementSecret())) {
            candidates.add(paths.pendingManagementSecret());
        }
        if (candidates.isEmpty()) {
            candidates.add(image.adminSecretFile()); // never rotated yet
        }
        SQLException last = null;
        for (Path candidate : candidates) {
            try {
                Connection connection = connect(endpoint, image.adminRole(), readSecret(candidate));
                if (candidate.equals(paths.pendingManagementSecret())) {
                    // the rotation reached the guest but the driver stopped before confirming it
                    Files.move(candidate, paths.managementSecret(), StandardCopyOption.REPLACE_EXISTING,
                            StandardCopyOption.ATOMIC_MOVE);
                }
                return connection;
            } catch (SQLException e) {
                last = e;
                if (!"28P01".equals(e.getSQLState())) {
                    throw e;
                }
            } catch (IOException e) {
                throw new PalisadeException(
                        ErrorCode.DRIVER_FAILURE, "cannot read the management secret of vm " + id, e);
            }
        }
        throw last;
    }

    static Connection connect(Endpoint endpoint, String user, String password) throws SQLException {
        return connect(endpoint, user, password, MANAGEMENT_DATABASE);
    }

    static Connection connect(Endpoint endpoint, String user, String password, String database) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", user);
        if (password != null) { // null: a trust rule is expected (first boot of a restored directory, see VmRestore)
            properties.setProperty("password", password);
        }
        properties.setProperty("sslmode", "disable"); // host <-> the VM's own namespace, never leaves the machine
        properties.setProperty("connectTimeout", "10");
        properties.setProperty("socketTimeout", "120");
        properties.setProperty("ApplicationName", "palisade-vm-driver");
        return DriverManager.getConnection(
                "jdbc:postgresql://" + endpoint + "/" + database, properties);
    }

    static void ensureTenant(Connection admin, InstanceSpec spec) throws SQLException {
        try (PreparedStatement role = admin.prepareStatement("SELECT rolsuper FROM pg_roles WHERE rolname = ?")) {
            role.setString(1, spec.username());
            try (ResultSet rs = role.executeQuery()) {
                if (!rs.next()) {
                    try (Statement s = admin.createStatement()) {
                        s.execute(TenantBootstrap.createRole(spec.username()));
                    }
                } else if (rs.getBoolean(1)) {
                    throw new PalisadeException(
                            ErrorCode.INVALID_REQUEST,
                            "the tenant role '" + spec.username() + "' must not be a superuser");
                } else {
                    try (Statement s = admin.createStatement()) {
                        s.execute(TenantBootstrap.stripPowers(spec.username()));
                    }
                }
            }
        }
        try (PreparedStatement db = admin.prepareStatement("SELECT 1 FROM pg_database WHERE datname = ?")) {
            db.setString(1, spec.database());
            try (ResultSet rs = db.executeQuery()) {
                if (!rs.next()) {
                    try (Statement s = admin.createStatement()) {
                        s.execute(TenantBootstrap.createDatabase(spec.database(), spec.username()));
                    }
                }
            }
        }
    }

    /** Sets a role's password as a SCRAM verifier: the plaintext never reaches the server or its logs. */
    static void setPasswordVerifier(Connection admin, String role, String password) throws SQLException {
        try (Statement s = admin.createStatement()) {
            s.execute(TenantBootstrap.LOCAL_COMMIT);
            s.execute(TenantBootstrap.setPassword(role, password));
        }
    }

    /** Replaces the template's management secret with a fresh one known only to this host (file mode 600). */
    static void rotateManagementSecret(Connection admin, GuestImage image, InstancePaths paths)
            throws SQLException, IOException {
        String secret = newSecret();
        VmFiles.writePrivate(paths.pendingManagementSecret(), secret, true);
        setPasswordVerifier(admin, image.adminRole(), secret);
        Files.move(paths.pendingManagementSecret(), paths.managementSecret(), StandardCopyOption.REPLACE_EXISTING,
                StandardCopyOption.ATOMIC_MOVE);
    }

    /** A fresh 256-bit management secret (URL-safe base64). */
    static String newSecret() {
        byte[] bytes = new byte[32];
        RANDOM.nextBytes(bytes);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    /**
     * Whether the tenant role exists, is no superuser and owns the tenant database: what a template must hold for its
     * clones to skip {@link #ensureTenant}'s checks.
     */
    static boolean holdsTenant(Connection admin, String role, String database) throws SQLException {
        try (PreparedStatement s = admin.prepareStatement("SELECT 1 FROM pg_catalog.pg_roles r JOIN "
                + "pg_catalog.pg_database d ON d.datdba = r.oid WHERE r.rolname = ? AND d.datname = ? "
                + "AND NOT r.rolsuper")) {
            s.setString(1, role);
            s.setString(2, database);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next();
            }
        }
    }

    /** The last lines of the guest's PostgreSQL log, read over a management connection; empty if it cannot. */
    static List<String> postgresLog(Connection admin, int lines) {
        try (Statement s = admin.createStatement();
                ResultSet rs = s.executeQuery(
                        "WITH f AS (SELECT current_setting('data_directory') || '/../log/postgresql.log' AS path) "
                                + "SELECT pg_read_file(f.path, greatest((pg_stat_file(f.path)).size - 65536, 0), "
                                + "65536) FROM f")) {
            return rs.next() && rs.getString(1) != null ? lastLines(rs.getString(1), lines) : List.of();
        } catch (SQLException e) {
            return List.of();
        }
    }

    static List<String> lastLines(String text, int lines) {
        List<String> all = text.lines().toList();
        return all.subList(Math.max(0, all.size() - lines), all.size());
    }

    static String readSecret(Path file) throws IOException {
        return Files.readString(file, StandardCharsets.UTF_8).strip();
    }
}
