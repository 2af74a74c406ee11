package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.logical.CopyPlan;
import io.palisade.logical.CopyProgress;
import io.palisade.logical.Fingerprint;
import io.palisade.logical.LogicalCopy;
import io.palisade.logical.SchemaExtractor;
import io.palisade.logical.SchemaReplayer;
import io.palisade.logical.SchemaScript;
import io.palisade.logical.Source;
import io.palisade.logical.Target;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.HostRoute;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.TenantCredentials;
import io.palisade.spi.TenantPlace;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import java.net.ConnectException;
import java.net.Socket;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The vm rung on both ends of a move's logical path, against a real QEMU guest and a real PostgreSQL on this host with
 * {@code wal_level = logical}: a host server's tenant copied into the VM through {@link VmDriver#routeToHost} (the
 * guest's subscription dials the host), then the VM's tenant copied into a database of the host server (the host's
 * subscription dials the VM's endpoint from {@link VmDriver#tenantPlace}). Each time with writes on the source during
 * the copy, sequences synced at the end, rows and fingerprints equal, nothing of the copy left. After the route is
 * closed the guest reaches nothing on the host again, and the next route rewrites the rules a forgotten one (palisade
 * died) left. One VM serves every test (a TCG boot costs seconds).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TestVmLogicalMoves {
    private static final String POOL = "10.214.30.0/24";
    private static final Duration CATCH_UP = Duration.ofMinutes(3);
    private static final String ROWS = "select count(*) || ':' || coalesce(md5(string_agg(t::text, '|'"
            + " order by t::text)), '') from %s t";

    private final String id = "db-tmove" + Long.toString(System.nanoTime() % 100_000, 36);
    private VmDriver driver;
    private TestingPostgres host;
    private TenantCredentials credentials;

    @BeforeAll
    void start() throws Exception {
        long started = System.nanoTime();
        driver = TestingVm.newDriver(POOL);
        credentials = new TenantCredentials("app", "app", TestingVm.randomSecret());
        driver.provision(new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app"), credentials,
                ProgressListener.NONE);
        host = new TestingPostgres(PostgresVersion.DEFAULT, Map.of("wal_level", "logical"));
        System.out.printf("vm %s and host server up in %d ms%n", id, millisSince(started));
    }

    @AfterAll
    void stop() {
        try {
            if (driver != null) {
                driver.destroy(id);
                TestingVm.assertNothingLeft(driver, id);
                assertThat(Files.exists(java.nio.file.Path.of("/sys/class/net", driver.network(id).hostVeth())))
                        .isFalse();
                driver.close();
                TestingDirectories.deleteRecursively(driver.config().instancesDir());
            }
        } finally {
            if (host != null) {
                host.close();
            }
        }
    }

    @Test
    @Order(1)
    void tenantPlaceNamesTheGuestsTenant() throws Exception {
        TenantPlace place = driver.tenantPlace(id);
        assertThat(place.database()).isEqualTo("app");
        assertThat(place.role()).isEqualTo("app");
        assertThat(place.namespace()).isEqualTo("public");
        assertThat(place.extensionSchema()).isEqualTo("public");
        assertThat(place.server()).isEqualTo(driver.endpoint(id));
        assertThat(place.admin()).isEqualTo(driver.adminAccess(id));
        try (Connection admin = vmAdmin(place)) {
            assertThat(value(admin, "select current_setting('wal_level') || ' ' || current_setting('max_wal_senders')"
                    + " || ' ' || current_setting('max_replication_slots') || ' '"
                    + " || current_setting('max_logical_replication_workers') || ' '"
                    + " || current_setting('max_sync_workers_per_subscription') || ' ' || rolsuper"
                    + " from pg_roles where rolname = current_user"))
                    .as("the guest image's replication settings, and a superuser")
                    .isEqualTo("logical 10 10 4 2 true");
        }
        assertThatThrownBy(() -> driver.tenantPlace("db-tmove-none"))
                .isInstanceOfSatisfying(PalisadeException.class,
                        e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CONFLICT))
                .hasMessageContaining("is not running");
    }

    @Test
    @Order(2)
    void copiesAHostServersTenantIntoTheVmThroughARouteToTheHost() throws Exception {
        hostSql("app", "set role app",
                "create table items (id bigint generated always as identity primary key, name text not null,"
                        + " price numeric(10, 2) check (price >= 0), created timestamptz default now())",
                "create index items_name on items (name)",
                "create table notes (n integer, body text)", // no primary key: replica identity full for the move
                "create sequence tickets start 100",
                "create view cheap as select id, name from items where price < 10",
                "insert into items (name, price) select 'item ' || g, g % 20 from generate_series(1, 50) g",
                "insert into notes select g, 'note ' || g from generate_series(1, 10) g",
                "select nextval('tickets') from generate_series(1, 5)");
        TenantPlace vm = driver.tenantPlace(id);
        Source source = new Source("public", "app");
        Target target = new Target(vm.namespace(), vm.role(), vm.extensionSchema());
        long started = System.nanoTime();
        try (Connection from = hostAdmin("app"); Connection to = vmAdmin(vm);
                HostRoute route = driver.routeToHost(id, host.endpoint())) {
            assertThat(route.endpoint().host()).as("the guest dials its gateway").isEqualTo(
                    GuestImage.load(driver.config().imageDir()).guestGateway());
            assertThat(guestConnects(route.endpoint())).as("the route is open").isTrue();
            SchemaScript script = SchemaExtractor.extract(from, source, target);
            SchemaReplayer.replay(to, script);
            CopyPlan plan = new CopyPlan("up_" + id.replace('-', '_'), source, "app", route.endpoint(), target);
            LogicalCopy copy = LogicalCopy.start(from, to, plan);
            sql(from, "insert into items (name, price) select 'later ' || g, 3 from generate_series(1, 20) g",
                    "update notes set body = 'changed' where n = 3", "delete from notes where n = 4",
                    "select nextval('tickets')");
            CopyProgress caughtUp = copy.awaitCaughtUp(CATCH_UP);
            assertThat(caughtUp.copied()).isTrue();
            assertThat(caughtUp.errors()).isZero();
            assertThat(copy.syncSequences()).isGreaterThanOrEqualTo(2);
            copy.finish();
            SchemaReplayer.afterCopy(to, script);
            System.out.printf("host -> vm: copied and caught up in %d ms (%s)%n", millisSince(started),
                    caughtUp.summary());

            for (String table : List.of("items", "notes")) {
                assertThat(value(to, ROWS.formatted(table))).as("rows of %s", table)
                        .isEqualTo(value(from, ROWS.formatted(table)));
            }
            assertThat(value(to, "select count(*) from items")).isEqualTo("70");
            assertThat(Fingerprint.of(to, vm.namespace(), vm.role())
                    .differencesFrom(Fingerprint.of(from, source.namespace(), source.role()))).isEmpty();
            assertThat(value(to, "select nextval('tickets')")).as("the sequence goes on where the source was")
                    .isEqualTo("106");
            assertThat(value(to, "select (select count(*) from pg_subscription) || '/'"
                    + " || (select count(*) from pg_replication_origin)")).isEqualTo("0/0");
            route.close();
            assertRouteClosed(route);
        }
    }

    @Test
    @Order(4)
    void routesOnlyToTheHostsLoopback() {
        assertThatThrownBy(() -> driver.routeToHost(id, new Endpoint("192.0.2.1", 5432)))
                .isInstanceOfSatisfying(PalisadeException.class,
                        e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.INVALID_REQUEST))
                .hasMessageContaining("loopback");
        assertThat(forwardRules()).hasSize(2);
    }

    /**
     * A palisade that died with a route open leaves the namespace's rules behind (its relay died with it); the next
     * route opened for the VM, here by a second driver as after a restart, rewrites the rules: the old port is closed.
     */
    @Test
    @Order(3)
    void theNextRouteRemovesTheRulesOfAForgottenOne() throws Exception {
        HostRoute forgotten = driver.routeToHost(id, host.endpoint());
        VmDriver restarted = new VmDriver(driver.config());
        try (HostRoute next = restarted.routeToHost(id, host.endpoint())) {
            assertThat(forwardRules()).as("base rules and the new route's two").hasSize(4)
                    .noneMatch(rule -> rule.contains(Integer.toString(forgotten.endpoint().port())));
            assertThat(guestConnects(next.endpoint())).isTrue();
            assertThat(guestConnects(forgotten.endpoint())).as("the forgotten route's relay still listens, but"
                    + " no rule leads there").isFalse();
        } finally {
            restarted.close();
        }
        assertThat(forwardRules()).hasSize(2);
        forgotten.close();
        assertThat(forwardRules()).hasSize(2);
    }

    @Test
    @Order(5)
    void copiesTheVmsTenantIntoAHostServer() throws Exception {
        TenantPlace vm = driver.tenantPlace(id);
        try (Connection tenant = vmTenant(vm)) {
            sql(tenant, "create table orders (id integer primary key, item bigint, qty integer not null)",
                    "insert into orders select g, g % 50 + 1, g from generate_series(1, 30) g");
        }
        hostSql("postgres", "create role home", "create database home owner home");
        Source source = new Source(vm.namespace(), vm.role());
        Target target = Target.ownDatabase("public", "home");
        long started = System.nanoTime();
        try (Connection from = vmAdmin(vm); Connection to = hostAdmin("home"); Connection writer = vmTenant(vm)) {
            SchemaScript script = SchemaExtractor.extract(from, source, target);
            SchemaReplayer.replay(to, script);
            CopyPlan plan = new CopyPlan("down_" + id.replace('-', '_'), source, vm.database(), vm.server(), target);
            LogicalCopy copy = LogicalCopy.start(from, to, plan);
            sql(writer, "insert into orders select g, 1, g from generate_series(31, 45) g",
                    "insert into items (name, price) values ('written on the vm', 1)",
                    "update notes set body = 'changed on the vm' where n = 5", "select nextval('tickets')");
            CopyProgress caughtUp = copy.awaitCaughtUp(CATCH_UP);
            assertThat(caughtUp.copied()).isTrue();
            assertThat(caughtUp.errors()).isZero();
            assertThat(copy.syncSequences()).isGreaterThanOrEqualTo(2);
            copy.finish();
            SchemaReplayer.afterCopy(to, script);
            System.out.printf("vm -> host: copied and caught up in %d ms (%s)%n", millisSince(started),
                    caughtUp.summary());

            for (String table : List.of("items", "notes", "orders")) {
                assertThat(value(to, ROWS.formatted(table))).as("rows of %s", table)
                        .isEqualTo(value(from, ROWS.formatted(table)));
            }
            assertThat(value(to, "select count(*) from orders")).isEqualTo("45");
            assertThat(Fingerprint.of(to, target.namespace(), target.role())
                    .differencesFrom(Fingerprint.of(from, source.namespace(), source.role()))).isEmpty();
            assertThat(value(from, "select (select count(*) from pg_publication) || '/'"
                    + " || (select count(*) from pg_replication_slots) || '/' || (select count(*) from pg_roles"
                    + " where rolname like 'palisade_move%') || '/' || (select count(*) from pg_stat_replication)"))
                    .as("publications/slots/move logins/walsenders left on the vm").isEqualTo("0/0/0/0");
        }
    }

    /** The namespace's rules are the base ones again, the relay is gone, and the guest reaches nothing on the host. */
    private void assertRouteClosed(HostRoute route) throws Exception {
        route.close(); // idempotent
        assertThat(forwardRules()).as("only the base rules: PostgreSQL in, replies out").hasSize(2);
        assertThat(driver.network(id).inNamespace(List.of("iptables-save", "-t", "nat"), null))
                .doesNotContain("--dport " + route.endpoint().port());
        String hostSide = driver.networkPool().find(id).orElseThrow().hostAddress();
        assertThatThrownBy(() -> new Socket(hostSide, route.endpoint().port()).close())
                .as("nothing listens on the relay's port any more").isInstanceOf(ConnectException.class);
        assertThat(guestConnects(route.endpoint())).as("the guest cannot reach its gateway's port").isFalse();
        assertThat(guestConnects(new Endpoint(hostSide, route.endpoint().port()))).as("nor the host's end").isFalse();
    }

    private List<String> forwardRules() {
        return driver.network(id).inNamespace(List.of("iptables-save", "-t", "filter"), null).lines()
                .filter(l -> l.startsWith("-A FORWARD")).toList();
    }

    /** Whether a TCP connect from inside the guest (busybox nc, as the guest's postgres user) succeeds. */
    private boolean guestConnects(Endpoint endpoint) throws SQLException {
        try (Connection admin = driver.managementConnection(id)) {
            List<String> out = TestingVm.guestShell(admin, "nc -w 3 " + endpoint.host() + " " + endpoint.port()
                    + " </dev/null >/dev/null 2>&1; echo $?");
            return Integer.parseInt(out.getLast().strip()) == 0;
        }
    }

    private static Connection vmAdmin(TenantPlace place) throws SQLException {
        return DriverManager.getConnection("jdbc:postgresql://" + place.server() + "/" + place.database()
                + "?sslmode=disable", place.admin().user(), place.admin().password().orElseThrow());
    }

    private Connection vmTenant(TenantPlace place) throws SQLException {
        return DriverManager.getConnection("jdbc:postgresql://" + place.server() + "/" + place.database()
                + "?sslmode=disable", credentials.username(), credentials.password());
    }

    private Connection hostAdmin(String database) throws SQLException {
        return DriverManager.getConnection("jdbc:postgresql://" + host.endpoint() + "/" + database, host.adminUser(),
                host.adminPassword());
    }

    private void hostSql(String database, String... statements) throws SQLException {
        try (Connection connection = hostAdmin(database)) {
            sql(connection, statements);
        }
    }

    private static void sql(Connection connection, String... statements) throws SQLException {
        try (Statement statement = connection.createStatement()) {
            for (String sql : statements) {
                statement.execute(sql);
            }
        }
    }

    private static String value(Connection connection, String sql) throws SQLException {
        try (Statement statement = connection.createStatement(); ResultSet rs = statement.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }

    private static long millisSince(long nanos) {
        return (System.nanoTime() - nanos) / 1_000_000;
    }
}
