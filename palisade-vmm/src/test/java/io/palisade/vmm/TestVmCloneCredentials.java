package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A clone's credentials set in one round trip ({@link CloneCredentials}) give exactly what a cold create gives: the
 * same roles (attributes, memberships), databases (owner, ACL, settings) and per-role settings, the tenant logs in
 * with its password and nothing else does, the management secret is rotated. A tenant name the template does not hold
 * takes the full path and ends the same as a cold create of that name. Real QEMU (TCG here).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestVmCloneCredentials {
    private VmDriver cloning;
    private VmDriver cold;
    private final List<String> cloneIds = new ArrayList<>();
    private final List<String> coldIds = new ArrayList<>();

    @BeforeAll
    void drivers() {
        cloning = TestingVm.newDriver("10.214.6.0/25");
        VmDriverConfig coldConfig = VmDriverConfig.defaults(TestingDirectories.newWorkDir("vm-cold"),
                        TestingVm.imageDir(), TestingDirectories.serviceUser(), cloning.config().cgroups())
                .withNetworkPool("10.214.6.128/25")
                .withBootTimeout(java.time.Duration.ofSeconds(120));
        cold = new VmDriver(coldConfig, coldConfig.instancesDir().resolve(".templates"), false);
    }

    @AfterAll
    void destroyAll() {
        for (VmDriver driver : new VmDriver[] {cloning, cold}) {
            if (driver == null) {
                continue;
            }
            for (String id : driver == cloning ? cloneIds : coldIds) {
                driver.destroy(id);
                TestingVm.assertNothingLeft(driver, id);
            }
            driver.close();
            TestingDirectories.deleteRecursively(driver.config().instancesDir());
        }
    }

    @Test
    void aCloneInOneRoundTripEqualsAColdCreate() throws Exception {
        Created clone = create(cloning, cloneIds, "db-onetrip", "app", "app");
        Created reference = create(cold, coldIds, "db-coldref", "app", "app");
        assertThat(clone.instance().details())
                .containsEntry(CreatePath.KEY, CreatePath.CLONE.wireName())
                .containsEntry("credentials_round_trips", "1")
                .containsKey("admin_login_ms");
        assertThat(reference.instance().details()).containsEntry(CreatePath.KEY, CreatePath.COLD.wireName());
        assertSameCatalog(clone, reference);
        assertOnlyTheTenantsPasswordOpens(clone);
    }

    @Test
    void aTenantTheTemplateDoesNotHoldTakesTheFullPath() throws Exception {
        Created clone = create(cloning, cloneIds, "db-fullpath", "shop", "shopdb");
        Created reference = create(cold, coldIds, "db-coldshop", "shop", "shopdb");
        assertThat(clone.instance().details())
                .containsEntry(CreatePath.KEY, CreatePath.CLONE.wireName())
                .doesNotContainKey("credentials_round_trips");
        assertSameCatalog(clone, reference);
        assertOnlyTheTenantsPasswordOpens(clone);
    }

    private record Created(VmDriver driver, String id, RunningInstance instance, TenantCredentials credentials) {}

    private static Created create(VmDriver driver, List<String> ids, String id, String role, String database) {
        String unique = id + Long.toString(System.nanoTime() % 10_000, 36);
        TenantCredentials credentials = new TenantCredentials(role, database, TestingVm.randomSecret());
        ids.add(unique);
        RunningInstance instance = driver.provision(
                new InstanceSpec(unique, PostgresVersion.DEFAULT, Plan.NANO, role, database), credentials,
                ProgressListener.NONE);
        System.out.println(unique + ": " + instance.details());
        return new Created(driver, unique, instance, credentials);
    }

    /** Roles, memberships, databases and per-role settings as the management role sees them (no oids, no secrets). */
    private static List<String> catalog(Created created) throws SQLException {
        List<String> rows = new ArrayList<>();
        try (Connection admin = created.driver().managementConnection(created.id());
                Statement s = admin.createStatement()) {
            query(s, rows, "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, "
                    + "rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, "
                    + "coalesce(split_part(rolpassword, '$', 1), 'none') FROM pg_authid ORDER BY rolname");
            query(s, rows, "SELECT g.rolname, m.rolname, a.admin_option, a.inherit_option, a.set_option "
                    + "FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
                    + "ORDER BY 1, 2");
            query(s, rows, "SELECT d.datname, pg_get_userbyid(d.datdba), d.datacl::text, d.datallowconn, "
                    + "d.datistemplate, d.datconnlimit, pg_encoding_to_char(d.encoding), d.datcollate, d.datctype "
                    + "FROM pg_database d ORDER BY 1");
            query(s, rows, "SELECT coalesce(d.datname, '*'), coalesce(r.rolname, '*'), s.setconfig::text "
                    + "FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase "
                    + "LEFT JOIN pg_roles r ON r.oid = s.setrole ORDER BY 1, 2");
        }
        return rows;
    }

    private static void query(Statement s, List<String> rows, String sql) throws SQLException {
        try (ResultSet rs = s.executeQuery(sql)) {
            int columns = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                StringBuilder row = new StringBuilder();
                for (int i = 1; i <= columns; i++) {
                    row.append(i > 1 ? " | " : "").append(rs.getString(i));
                }
                rows.add(row.toString());
            }
        }
    }

    private static void assertSameCatalog(Created clone, Created reference) throws SQLException {
        List<String> cloneCatalog = catalog(clone);
        assertThat(cloneCatalog).as("catalog of the clone vs a cold create").isEqualTo(catalog(reference));
        assertThat(cloneCatalog).anySatisfy(row -> assertThat(row).startsWith(
                clone.credentials().username() + " | f | t | f | f | t | f | f | -1 | null | SCRAM-SHA-256"));
    }

    private static void assertOnlyTheTenantsPasswordOpens(Created created) throws Exception {
        RunningInstance instance = created.instance();
        TenantCredentials credentials = created.credentials();
        try (Connection tenant = tenantConnection(instance, credentials.username(), credentials.database(),
                        credentials.password());
                Statement s = tenant.createStatement();
                ResultSet rs = s.executeQuery("SELECT current_user, current_database(), "
                        + "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")) {
            assertThat(rs.next()).isTrue();
            assertThat(rs.getString(1)).isEqualTo(credentials.username());
            assertThat(rs.getString(2)).isEqualTo(credentials.database());
            assertThat(rs.getBoolean(3)).isFalse();
        }
        assertThatThrownBy(() -> tenantConnection(instance, credentials.username(), credentials.database(),
                "wrong-" + credentials.password()).close())
                .isInstanceOfSatisfying(SQLException.class, e -> assertThat(e.getSQLState()).isEqualTo("28P01"));
        GuestImage image = GuestImage.load(created.driver().config().imageDir());
        String templateSecret = GuestAdmin.readSecret(image.adminSecretFile());
        assertThatThrownBy(() -> tenantConnection(instance, image.adminRole(), "postgres", templateSecret).close())
                .as("the image's template management secret after the rotation")
                .isInstanceOfSatisfying(SQLException.class, e -> assertThat(e.getSQLState()).isEqualTo("28P01"));
        InstancePaths paths = created.driver().paths(created.id());
        assertThat(paths.managementSecret()).exists();
        assertThat(paths.pendingManagementSecret()).doesNotExist();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(paths.managementSecret())))
                .isEqualTo("rw-------");
        try (Connection admin = GuestAdmin.connect(instance.endpoint(), image.adminRole(),
                GuestAdmin.readSecret(paths.managementSecret()))) {
            assertThat(admin.isValid(5)).isTrue();
        }
    }

    private static Connection tenantConnection(RunningInstance instance, String user, String database,
            String password) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", user);
        properties.setProperty("password", password);
        properties.setProperty("sslmode", "disable");
        return DriverManager.getConnection("jdbc:postgresql://" + instance.endpoint() + "/" + database, properties);
    }
}
