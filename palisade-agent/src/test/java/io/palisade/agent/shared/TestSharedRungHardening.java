package io.palisade.agent.shared;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.ServerLogin;
import io.palisade.spi.TenantCredentials;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Attacks of one shared-rung tenant on another that a security review found to work, each now refused: shadowing the
 * grant guard's catalogs with a temporary view, a policy naming another tenant's role, a dependency in one tenant's
 * database that kept another's role from being dropped, a database made a template, and a statement that catches its
 * own cancels.
 */
class TestSharedRungHardening {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final SharedRungFixture fixture = new SharedRungFixture();
    private final SharedRungDriver databaseRung = new SharedRungDriver(fixture.pool, TenantLayout.DATABASE);
    private final SharedRungDriver schemaRung = new SharedRungDriver(fixture.pool, TenantLayout.SCHEMA);
    private final List<Runnable> cleanUp = new ArrayList<>();

    private record Provisioned(String id, ServerLogin login, RunningInstance instance, String password) {
        Connection connect() throws SQLException {
            return DriverManager.getConnection("jdbc:postgresql://" + instance.endpoint() + "/" + login.database()
                    + "?connectTimeout=10", login.user(), password);
        }
    }

    @AfterEach
    void tearDown() {
        try {
            cleanUp.reversed().forEach(Runnable::run);
        } finally {
            fixture.close();
        }
    }

    private Provisioned provision(SharedRungDriver driver, Plan plan) {
        String id = "hard-" + HexFormat.of().formatHex(bytes(4));
        String password = HexFormat.of().formatHex(bytes(12));
        RunningInstance instance = driver.provision(new InstanceSpec(id, PostgresVersion.DEFAULT, plan, "app", "app"),
                new TenantCredentials("app", "app", password), ProgressListener.NONE);
        cleanUp.add(() -> driver.destroy(id));
        return new Provisioned(id, instance.serverLogin().orElseThrow(), instance, password);
    }

    private static byte[] bytes(int n) {
        byte[] bytes = new byte[n];
        RANDOM.nextBytes(bytes);
        return bytes;
    }

    @Test
    void aTemporaryViewDoesNotBlindTheGrantGuard() throws Exception {
        Provisioned a = provision(schemaRung, Plan.NANO);
        Provisioned b = provision(schemaRung, Plan.NANO);
        try (Connection c = a.connect(); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE secret (x int)");
            s.execute("CREATE TEMP VIEW pg_roles AS SELECT 0::oid AS oid, ''::name AS rolname, false AS rolsuper "
                    + "WHERE false");
            for (String grant : List.of(
                    "GRANT USAGE ON SCHEMA " + a.login().user() + " TO " + b.login().user(),
                    "GRANT SELECT ON secret TO " + b.login().user())) {
                assertThatThrownBy(() -> s.execute(grant)).as(grant)
                        .isInstanceOfSatisfying(SQLException.class,
                                e -> assertThat(e.getSQLState()).isEqualTo("42501"));
            }
        }
    }

    /**
     * Tenant code that a superuser's session runs as the tenant (ANALYZE, by autovacuum or palisade, evaluates an index
     * expression as the table's owner) is held to the same rule as the tenant's own sessions.
     */
    @Test
    void aGrantFromAnIndexExpressionDuringAnalyzeIsRefused() throws Exception {
        Provisioned a = provision(databaseRung, Plan.NANO);
        Provisioned b = provision(schemaRung, Plan.NANO);
        try (Connection c = a.connect(); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t (x int)");
            s.execute("INSERT INTO t SELECT generate_series(1, 100)");
            // an immutable index function may not GRANT itself, but may call a volatile one that does
            s.execute("CREATE FUNCTION do_leak() RETURNS void LANGUAGE plpgsql VOLATILE AS $f$ BEGIN"
                    + " EXECUTE 'GRANT SELECT ON t TO " + b.login().user() + "'; END $f$");
            s.execute("CREATE FUNCTION leak(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN"
                    + " IF current_user <> session_user THEN PERFORM do_leak(); END IF; RETURN $1; END $f$");
            s.execute("CREATE INDEX t_leak ON t (leak(x))");
        }
        SharedServer server = fixture.pool.server(fixture.pool.tenant(a.id()).orElseThrow());
        try (Connection admin = server.connect(a.login().database()); Statement s = admin.createStatement()) {
            // refused by the grant guard, which holds a superuser's session running the tenant's code as the tenant
            // to the tenant's rule
            assertThatThrownBy(() -> s.execute("ANALYZE t"))
                    .isInstanceOfSatisfying(SQLException.class, e -> {
                        System.out.println("ANALYZE with a granting index expression: " + e.getMessage());
                        assertThat(e.getSQLState()).isEqualTo("42501");
                    });
            try (var rs = s.executeQuery("SELECT has_table_privilege('" + b.login().user() + "', 't', 'SELECT')")) {
                rs.next();
                assertThat(rs.getBoolean(1)).as("B was not granted A's table").isFalse();
            }
        }
    }

    @Test
    void aPolicyCannotNameAnotherTenant() throws Exception {
        Provisioned a = provision(databaseRung, Plan.NANO);
        Provisioned b = provision(schemaRung, Plan.NANO);
        try (Connection c = a.connect(); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t (x int)");
            s.execute("CREATE POLICY own ON t TO PUBLIC USING (true)");
            assertThatThrownBy(() -> s.execute("CREATE POLICY theirs ON t TO " + b.login().user() + " USING (true)"))
                    .isInstanceOfSatisfying(SQLException.class, e -> assertThat(e.getSQLState()).isEqualTo("42501"));
            assertThatThrownBy(() -> s.execute("ALTER POLICY own ON t TO " + b.login().user()))
                    .isInstanceOfSatisfying(SQLException.class, e -> assertThat(e.getSQLState()).isEqualTo("42501"));
        }
    }

    /** Whatever route a grant or a policy naming B took into A's database, it does not keep B's role alive. */
    @Test
    void anotherTenantsDatabaseCannotKeepARoleFromBeingDropped() throws Exception {
        Provisioned a = provision(databaseRung, Plan.NANO);
        Provisioned b = provision(databaseRung, Plan.NANO);
        Provisioned c = provision(schemaRung, Plan.NANO);
        SharedServer server = fixture.pool.server(fixture.pool.tenant(a.id()).orElseThrow());
        try (Connection admin = server.connect(a.login().database()); Statement s = admin.createStatement()) {
            // as if the guard had missed them: the superuser passes it
            s.execute("CREATE TABLE t (x int)");
            s.execute("ALTER TABLE t OWNER TO " + a.login().user());
            s.execute("GRANT SELECT ON t TO " + b.login().user());
            s.execute("CREATE POLICY p ON t TO " + b.login().user() + ", " + c.login().user() + " USING (true)");
            s.execute("ALTER DEFAULT PRIVILEGES FOR ROLE " + a.login().user() + " GRANT SELECT ON TABLES TO "
                    + c.login().user());
        }
        try (Connection conn = a.connect(); Statement s = conn.createStatement()) {
            // settings A's sessions and the superuser's would both get in A's database
            s.execute("ALTER DATABASE " + a.login().database() + " SET role = " + a.login().user());
            s.execute("ALTER DATABASE " + a.login().database() + " SET default_transaction_read_only = on");
            s.execute("ALTER DATABASE " + a.login().database() + " SET lock_timeout = 1");
        }
        databaseRung.destroy(b.id());
        schemaRung.destroy(c.id());
        fixture.assertNothingLeft(b.id());
        fixture.assertNothingLeft(c.id());
        try (Connection conn = a.connect(); Statement s = conn.createStatement()) {
            s.execute("SET default_transaction_read_only = off");
            s.execute("INSERT INTO t VALUES (1)");
        }
    }

    @Test
    void aDatabaseMadeATemplateIsStillDeleted() throws Exception {
        Provisioned a = provision(databaseRung, Plan.NANO);
        try (Connection c = a.connect(); Statement s = c.createStatement()) {
            s.execute("ALTER DATABASE " + a.login().database() + " IS_TEMPLATE true");
        }
        databaseRung.destroy(a.id());
        fixture.assertNothingLeft(a.id());
    }

    @Test
    void aStatementThatCatchesItsCancelsIsEndedSoonAfterItsLimit() throws Exception {
        Plan smallest = new Plan("tiny", 1, Plan.MIN_MEMORY_MB, 1024, 0, 0);
        Duration limit = TenantLimits.of(smallest, fixture.pool.config().maxConnections()).statementTimeout();
        Provisioned a = provision(schemaRung, smallest);
        try (Connection c = a.connect(); Statement s = c.createStatement()) {
            s.execute("SET statement_timeout = 0");
            long started = System.nanoTime();
            // catches every cancel, for up to a minute past its limit
            assertThatThrownBy(() -> s.execute("""
                    DO $$ BEGIN
                        WHILE clock_timestamp() < now() + interval '%d seconds' LOOP
                            BEGIN
                                PERFORM pg_sleep(60);
                            EXCEPTION WHEN query_canceled THEN NULL;
                            END;
                        END LOOP;
                    END $$""".formatted(limit.toSeconds() + 60)))
                    .isInstanceOf(SQLException.class);
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            assertThat(took).as("a statement with a %s limit", limit)
                    .isGreaterThanOrEqualTo(limit)
                    .isLessThan(limit.plusSeconds(12));
        }
        assertThat(fixture.pool.sessionsCutOff()).isPositive();
    }

    @Test
    void aTenantOverItsMemoryLosesItsLargestSession() throws Exception {
        Plan smallest = new Plan("tiny", 1, Plan.MIN_MEMORY_MB, 1024, 0, 0);
        Provisioned a = provision(schemaRung, smallest);
        Provisioned b = provision(schemaRung, smallest);
        try (Connection c = a.connect(); Statement s = c.createStatement()) {
            // a sort held in memory, far beyond the 128 MB the plan gives all of A's sessions together
            s.execute("SET work_mem = '2GB'");
            assertThatThrownBy(() -> s.execute("SELECT count(*) FROM (SELECT g, repeat(md5(g::text), 4) AS pad "
                    + "FROM generate_series(1, 4000000) g ORDER BY pad) sorted"))
                    .isInstanceOf(SQLException.class)
                    .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isIn("57P01", "08006"));
        }
        try (Connection c = b.connect(); Statement s = c.createStatement()) {
            assertThat(s.execute("SELECT 1")).as("the neighbour is untouched").isTrue();
        }
        assertThat(fixture.pool.sessionsCutOff()).isPositive();
    }

    @Test
    void theLogStaysBoundedWhateverATenantLogs() throws Exception {
        Provisioned a = provision(schemaRung, Plan.NANO);
        SharedServer server = fixture.pool.server(fixture.pool.tenant(a.id()).orElseThrow());
        long chunks = SharedServer.LOG_PART_BYTES / 1_000_000 + 8;
        try (Connection c = a.connect(); Statement s = c.createStatement()) {
            s.execute("DO $$ BEGIN FOR i IN 1.." + chunks + " LOOP RAISE LOG '%', repeat('x', 1000000); END LOOP; END $$");
            s.execute("DO $$ BEGIN RAISE WARNING 'marker-after-the-flood'; END $$");
        }
        // between the part set aside and the server's next file, there is briefly no current part
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30))
                .ignoreException(java.nio.file.NoSuchFileException.class).untilAsserted(() -> {
            assertThat(server.previousJsonLog()).as("the flooded part was set aside").exists();
            assertThat(java.nio.file.Files.size(server.jsonLog())).isLessThan(SharedServer.LOG_PART_BYTES);
        });
        assertThat(schemaRung.logTail(a.id(), 5)).anyMatch(line -> line.contains("marker-after-the-flood"));
    }

    @Test
    void aSharedServerRunsAsAnOsUserOfItsOwn() throws Exception {
        Provisioned a = provision(databaseRung, Plan.NANO);
        SharedServer server = fixture.pool.server(fixture.pool.tenant(a.id()).orElseThrow());
        io.palisade.host.ServiceUser serviceUser = io.palisade.testing.TestingDirectories.serviceUser();
        if (!serviceUser.dropsPrivileges()) {
            assertThat(System.getenv("CI")).as("CI runs as root").isNotEqualTo("true");
            System.out.println("SKIPPED aSharedServerRunsAsAnOsUserOfItsOwn: not root, everything runs as one user");
            org.junit.jupiter.api.Assumptions.abort("not root");
        }
        String status = java.nio.file.Files.readString(java.nio.file.Path.of("/proc", Long.toString(server.pid()),
                "status"));
        int uid = Integer.parseInt(status.lines().filter(l -> l.startsWith("Uid:")).findFirst().orElseThrow()
                .split("\\s+")[1]);
        assertThat(uid).as("the postmaster's uid").isNotEqualTo(serviceUser.uid())
                .isBetween(io.palisade.host.TenantUsers.UID_MIN, io.palisade.host.TenantUsers.UID_MAX);
        io.palisade.host.Processes.Result read = io.palisade.host.Processes.run(serviceUser.wrap(List.of("ls",
                server.dir().resolve("data").toString())), Duration.ofSeconds(10), null);
        assertThat(read.ok()).as("the service user lists the server's data: %s", read).isFalse();
    }
}
