package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.palisade.host.Processes;
import io.palisade.pgwire.ScramClient;
import io.palisade.spi.ServerLogin;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import io.palisade.testing.TestingTls;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyIn;

/**
 * Reuse of logged-in backend connections through the proxy, against real PostgreSQL 16 servers with PgJDBC and psql:
 * a client that ends cleanly leaves its backend, reset with {@code DISCARD ALL}, to the next client of exactly the
 * same login (the same backend pid serves both), and nothing of the first session reaches the second. One event loop,
 * so that consecutive clients meet the same pool partition.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestBackendReuse {
    private static final String A = "db-reuse0001";
    /** Another tenant id whose login is byte for byte A's, on A's server: it must never get A's connections. */
    private static final String TWIN = "db-reuse0002";
    private static final String SHARED_1 = "db-shared101";
    private static final String SHARED_2 = "db-shared102";
    private final String sharedPassword = "pw-" + Long.toString(System.nanoTime(), 36) + "-reuse";

    private TestingPostgres pg;
    private TestingPostgres shared;
    private Path workDir;
    private FakeResolver resolver;
    private SimpleMeterRegistry registry;
    private PostgresProxy proxy;
    private Path ca;

    @BeforeAll
    void setUp() throws SQLException {
        pg = new TestingPostgres();
        shared = new TestingPostgres();
        try (Connection c = pg.connectAsAdmin(); Statement s = c.createStatement()) {
            s.execute("CREATE ROLE reuse_member NOLOGIN");
            s.execute("GRANT reuse_member TO app");
        }
        try (Connection c = shared.connectAsAdmin(); Statement s = c.createStatement()) {
            s.execute("SET password_encryption = 'scram-sha-256'");
            for (String role : List.of("tenant_reuse1", "tenant_reuse2")) {
                s.execute("CREATE ROLE " + role + " LOGIN PASSWORD '" + sharedPassword + "'");
                s.execute("CREATE DATABASE " + role + " OWNER " + role);
            }
        }
        workDir = TestingDirectories.newWorkDir("proxy-reuse");
        resolver = new FakeResolver().put(A, pg.endpoint(), pg.credentials()).put(TWIN, pg.endpoint(), pg.credentials())
                .putShared(SHARED_1, shared.endpoint(), new ServerLogin("tenant_reuse1", "tenant_reuse1"),
                        sharedPassword)
                .putShared(SHARED_2, shared.endpoint(), new ServerLogin("tenant_reuse2", "tenant_reuse2"),
                        sharedPassword);
        registry = new SimpleMeterRegistry();
        proxy = new PostgresProxy(config().withBackendPool(Duration.ofSeconds(30), 4), resolver, resolver, registry)
                .start();
        ca = proxy.tlsMaterial().caCertificateFile().orElseThrow();
    }

    private ProxyConfig config() {
        return ProxyConfig.defaults(TestPostgresProxyIntegration.DOMAIN, workDir.resolve("tls"))
                .withBind("127.0.0.1", 0).withIoThreads(1);
    }

    @AfterAll
    void tearDown() {
        PooledProxyFixture.closeAll(proxy, workDir, pg, shared);
    }

    @AfterEach
    void emptyThePool() {
        PooledProxyFixture.emptyThePool(proxy, List.of(A, TWIN, SHARED_1, SHARED_2));
    }

    private Connection connect(String id, String password, Map<String, String> extra) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", "app");
        properties.setProperty("password", password);
        properties.setProperty("sslmode", "verify-full");
        properties.setProperty("sslrootcert", ca.toString());
        properties.setProperty("options", "endpoint=" + id);
        properties.setProperty("connectTimeout", "20");
        extra.forEach(properties::setProperty);
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + proxy.port() + "/app", properties);
    }

    private Connection connect(String id) throws SQLException {
        return connect(id, id.startsWith("db-shared") ? sharedPassword : pg.credentials().password(), Map.of());
    }

    private static String query(Connection connection, String sql) throws SQLException {
        return TestPostgresProxyIntegration.queryString(connection, sql);
    }

    private static int pid(Connection connection) throws SQLException {
        return Integer.parseInt(query(connection, "SELECT pg_backend_pid()"));
    }

    /** Closes the client and waits until its backend is parked (reset done). */
    private void closeAndAwaitParked(Connection connection, String id, int parked) throws SQLException {
        connection.close();
        awaitParked(id, parked);
    }

    /**
     * Waits until {@code count} backends of the database are parked, none still being reset ({@code idle} counts
     * those too, and a client arriving during a reset gets a new backend) and no client is connected or holds a slot.
     */
    private void awaitParked(String id, int count) {
        await().atMost(Duration.ofSeconds(10)).until(() -> proxy.idleBackendConnections(id) == count
                && proxy.backendPool().parkedPerLoop(id).stream().mapToInt(Integer::intValue).sum() == count
                && proxy.openClientConnections() == 0 && proxy.activeConnections(id) == 0);
    }

    private double counter(String name) {
        return registry.get(name).counter().count();
    }

    private boolean backendAlive(TestingPostgres server, int pid) throws SQLException {
        try (Connection admin = server.connectAsAdmin()) {
            return query(admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid).equals("1");
        }
    }

    @Test
    void aSecondClientGetsTheFirstOnesBackend() throws SQLException {
        double reusedBefore = counter("palisade.proxy.backends.reused");
        Connection first = connect(A);
        int pid = pid(first);
        closeAndAwaitParked(first, A, 1);
        assertThat(proxy.activeConnections(A)).as("a parked backend holds no client slot").isZero();
        try (Connection second = connect(A)) {
            assertThat(pid(second)).isEqualTo(pid);
            assertThat(query(second, "SELECT current_user || '@' || current_database()")).isEqualTo("app@app");
            assertThat(second.unwrap(PGConnection.class).getParameterStatus("server_version")).startsWith("16");
            assertThat(proxy.idleBackendConnections(A)).isZero();
        }
        assertThat(counter("palisade.proxy.backends.reused")).isEqualTo(reusedBefore + 1);
    }

    @Test
    void psqlReusesTooAndSeesNothingOfTheSessionBefore() {
        String conninfo = "host=" + A + "." + TestPostgresProxyIntegration.DOMAIN + " hostaddr=127.0.0.1 port="
                + proxy.port() + " dbname=app user=app sslmode=verify-full sslrootcert=" + ca;
        ExternalClient.Result first = psql(conninfo, "SET TimeZone = 'Asia/Tokyo'; SELECT pg_backend_pid()");
        assertThat(first.exitCode()).as(first.all()).isZero();
        awaitParked(A, 1);
        ExternalClient.Result second = psql(conninfo, "SELECT pg_backend_pid() || ' ' || current_setting('TimeZone')");
        assertThat(second.exitCode()).as(second.all()).isZero();
        String firstPid = first.stdout().strip().lines().reduce((a, b) -> b).orElseThrow();
        assertThat(second.stdout().strip()).startsWith(firstPid + " ").doesNotContain("Tokyo");
    }

    private ExternalClient.Result psql(String conninfo, String sql) {
        return ExternalClient.run(List.of("/usr/bin/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql),
                Map.of("PGPASSWORD", pg.credentials().password(), "PGCONNECT_TIMEOUT", "20"), null,
                Duration.ofSeconds(60));
    }

    @Test
    void sessionStateIsGoneForTheNextClient() throws SQLException {
        Connection first = connect(A);
        int pid = pid(first);
        try (Statement s = first.createStatement()) {
            s.execute("SET work_mem = '77MB'");
            s.execute("SET application_name = 'leaky'");
            s.execute("CREATE TEMP TABLE leftover (x int)");
            s.execute("PREPARE leftover_plan AS SELECT 1");
            s.execute("SELECT pg_advisory_lock(4242)");
            s.execute("LISTEN leftover_channel");
            s.execute("SET ROLE reuse_member");
        }
        assertThat(query(first, "SELECT current_user")).isEqualTo("reuse_member");
        closeAndAwaitParked(first, A, 1);
        try (Connection second = connect(A)) {
            assertThat(pid(second)).isEqualTo(pid);
            assertThat(query(second, "SHOW work_mem")).isEqualTo("4MB");
            assertThat(query(second, "SHOW application_name")).isEqualTo("PostgreSQL JDBC Driver");
            assertThat(second.unwrap(PGConnection.class).getParameterStatus("application_name"))
                    .isEqualTo("PostgreSQL JDBC Driver");
            assertThat(query(second, "SELECT coalesce(to_regclass('pg_temp.leftover')::text, 'none')"))
                    .isEqualTo("none");
            assertThat(query(second, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'leftover_plan'"))
                    .isEqualTo("0");
            assertThat(query(second, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = "
                    + "pg_backend_pid()")).isEqualTo("0");
            assertThat(query(second, "SELECT count(*) FROM pg_listening_channels()")).isEqualTo("0");
            assertThat(query(second, "SELECT current_user || ' ' || session_user")).isEqualTo("app app");
        }
        try (Connection other = pg.connectAsAdmin()) {
            assertThat(query(other, "SELECT pg_try_advisory_lock(4242)::text")).as("the lock was released")
                    .isEqualTo("true");
        }
    }

    @Test
    void aClientThatLeavesInATransactionOrACopyIsNotPooled() throws Exception {
        double pooledBefore = counter("palisade.proxy.backends.pooled");
        Connection inTransaction = connect(A);
        int transactionPid = pid(inTransaction);
        inTransaction.setAutoCommit(false);
        query(inTransaction, "SELECT 1");
        inTransaction.close(); // Terminate with the transaction open
        try (Connection setup = connect(A); Statement s = setup.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS copy_target (x int)");
        }
        awaitParked(A, 1);
        double afterSetup = counter("palisade.proxy.backends.pooled");
        Connection copying = connect(A);
        int copyPid = pid(copying);
        CopyIn copy = copying.unwrap(PGConnection.class).getCopyAPI().copyIn("COPY copy_target FROM STDIN");
        byte[] row = "1\n".getBytes(StandardCharsets.UTF_8);
        copy.writeToCopy(row, 0, row.length);
        copy.flushCopy();
        copying.close(); // Terminate in the middle of COPY FROM STDIN
        await().atMost(Duration.ofSeconds(10)).until(() -> proxy.openClientConnections() == 0);
        await().atMost(Duration.ofSeconds(10)).until(() -> !backendAlive(pg, copyPid));
        assertThat(backendAlive(pg, transactionPid)).isFalse();
        assertThat(afterSetup).as("only the setup connection was pooled").isEqualTo(pooledBefore + 1);
        assertThat(counter("palisade.proxy.backends.pooled")).isEqualTo(afterSetup);
    }

    @Test
    void differentStartupParametersAndTenantsNeverShare() throws SQLException {
        // assumeMinServerVersion: PgJDBC sends application_name in the StartupMessage instead of a SET afterwards
        Connection named = named("one");
        int namedPid = pid(named);
        closeAndAwaitParked(named, A, 1);
        try (Connection other = named("two")) {
            assertThat(pid(other)).as("another application_name").isNotEqualTo(namedPid);
        }
        try (Connection twin = connect(TWIN)) {
            assertThat(pid(twin)).as("another database id with the same login on the same server")
                    .isNotEqualTo(namedPid);
        }
        try (Connection same = named("one")) {
            assertThat(pid(same)).as("the same parameters again").isEqualTo(namedPid);
            assertThat(query(same, "SHOW application_name")).isEqualTo("one");
        }
    }

    private Connection named(String applicationName) throws SQLException {
        return connect(A, pg.credentials().password(), Map.of("ApplicationName", applicationName,
                "assumeMinServerVersion", "16"));
    }

    @Test
    void sharedServerTenantsNeverGetEachOthersBackend() throws SQLException {
        Connection first = connect(SHARED_1);
        int pid1 = pid(first);
        closeAndAwaitParked(first, SHARED_1, 1);
        try (Connection second = connect(SHARED_2)) {
            assertThat(pid(second)).isNotEqualTo(pid1);
            assertThat(query(second, "SELECT current_user || '@' || current_database()"))
                    .isEqualTo("tenant_reuse2@tenant_reuse2");
        }
        try (Connection again = connect(SHARED_1)) {
            assertThat(pid(again)).isEqualTo(pid1);
            assertThat(query(again, "SELECT current_user || '@' || current_database()"))
                    .isEqualTo("tenant_reuse1@tenant_reuse1");
            assertThat(again.unwrap(PGConnection.class).getParameterStatus("session_authorization"))
                    .as("the reused session shows the tenant's name, not the server's").isEqualTo("app");
        }
    }

    @Test
    void evictionAndARotatedPasswordEmptyThePool() throws SQLException {
        Connection first = connect(A);
        int pid = pid(first);
        closeAndAwaitParked(first, A, 1);
        proxy.evictIdleBackends(A); // what suspend, delete, rotation, restore and a move's cutover call
        assertThat(proxy.idleBackendConnections()).as("closed when evict returns").isZero();
        await().atMost(Duration.ofSeconds(10)).until(() -> proxy.idleBackendConnections(A) == 0
                && !backendAlive(pg, pid));
        // a backend logged in with the old password is never handed to a client of the new one
        Connection second = connect(TWIN);
        int twinPid = pid(second);
        closeAndAwaitParked(second, TWIN, 1);
        String rotated = "rotated-" + Long.toString(System.nanoTime(), 36);
        try (Connection admin = pg.connectAsAdmin(); Statement s = admin.createStatement()) {
            s.execute("ALTER ROLE app PASSWORD '" + rotated + "'");
        }
        resolver.login(TWIN, new TenantCredentials("app", "app", rotated));
        try (Connection third = connect(TWIN, rotated, Map.of())) {
            assertThat(pid(third)).isNotEqualTo(twinPid);
        } finally {
            resolver.login(TWIN, pg.credentials());
            try (Connection admin = pg.connectAsAdmin(); Statement s = admin.createStatement()) {
                s.execute("ALTER ROLE app PASSWORD '" + pg.credentials().password() + "'");
            }
        }
        proxy.forgetDatabase(TWIN);
        await().atMost(Duration.ofSeconds(10)).until(() -> !backendAlive(pg, twinPid));
    }

    @Test
    void evictionClosesABackendStillBeingReset() throws SQLException {
        Connection first = connect(A);
        int pid = pid(first);
        // a stopped backend cannot answer the DISCARD ALL the proxy sends when its client leaves: it stays resetting
        assertThat(Processes.signal(pid, "STOP")).as("kill -STOP %d", pid).isTrue();
        try {
            first.close();
            await().atMost(Duration.ofSeconds(10)).until(() -> proxy.idleBackendConnections(A) == 1
                    && proxy.openClientConnections() == 0);
            assertThat(proxy.openBackendConnections()).as("the backend being reset").isEqualTo(1);
            proxy.evictIdleBackends(A); // a suspend or a move's cutover must not find it still connected
            // evict waits up to 2 s and the Terminate's grace is 1 s: a short await keeps a CI stall from failing it
            // (without the eviction, the reset would hang for the pool's 30 s idle timeout)
            await().atMost(Duration.ofSeconds(3)).untilAsserted(() -> assertThat(proxy.openBackendConnections())
                    .as("backend connections once evicted").isZero());
            assertThat(proxy.idleBackendConnections(A)).isZero();
            assertThat(proxy.idleBackendConnections()).isZero();
        } finally {
            assertThat(Processes.signal(pid, "CONT")).as("kill -CONT %d", pid).isTrue();
        }
        await().atMost(Duration.ofSeconds(10)).until(() -> !backendAlive(pg, pid));
    }

    @Test
    void parkedBackendsCloseAfterTheIdleTimeout() throws SQLException {
        Path dir = TestingDirectories.newWorkDir("proxy-reuse-idle");
        try (PostgresProxy quick = new PostgresProxy(ProxyConfig.defaults(TestPostgresProxyIntegration.DOMAIN,
                dir.resolve("tls")).withBind("127.0.0.1", 0).withIoThreads(1)
                .withBackendPool(Duration.ofMillis(500), 4), resolver, resolver, new SimpleMeterRegistry()).start()) {
            Properties properties = new Properties();
            properties.setProperty("user", "app");
            properties.setProperty("password", pg.credentials().password());
            properties.setProperty("sslmode", "require");
            properties.setProperty("options", "endpoint=" + A);
            int pid;
            try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + quick.port() + "/app",
                    properties)) {
                pid = pid(c);
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> quick.idleBackendConnections(A) == 1);
            await().atMost(Duration.ofSeconds(10)).until(() -> quick.idleBackendConnections(A) == 0
                    && quick.openBackendConnections() == 0 && !backendAlive(pg, pid));
        } finally {
            TestingDirectories.deleteRecursively(dir);
        }
    }

    @Test
    void aCancelAfterReuseReachesTheReusedBackendOnly() throws Exception {
        Connection first = connect(A);
        int pid = pid(first);
        closeAndAwaitParked(first, A, 1);
        ExecutorService executor = Executors.newFixedThreadPool(2, Thread.ofPlatform().name("reuse-sleeper").factory());
        try (Connection reused = connect(A); Connection bystander = connect(A);
                Statement sleeping = reused.createStatement(); Statement bystanding = bystander.createStatement()) {
            assertThat(pid(reused)).isEqualTo(pid);
            int bystanderPid = pid(bystander);
            assertThat(bystanderPid).isNotEqualTo(pid);
            Future<?> cancelled = executor.submit(() -> sleeping.execute("SELECT pg_sleep(30)"));
            Future<?> untouched = executor.submit(() -> bystanding.execute("SELECT pg_sleep(3)"));
            await().atMost(Duration.ofSeconds(10)).until(() -> {
                try (Connection admin = pg.connectAsAdmin()) {
                    return query(admin, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                            + " AND query LIKE 'SELECT pg_sleep(%'").equals("2");
                }
            });
            sleeping.cancel();
            Throwable failure = catchCause(() -> cancelled.get(20, TimeUnit.SECONDS));
            assertThat(failure).isInstanceOf(SQLException.class);
            assertThat(((SQLException) failure).getSQLState()).isEqualTo("57014");
            assertThat(catchCause(() -> untouched.get(20, TimeUnit.SECONDS))).as("the other query ran to its end")
                    .isNull();
            assertThat(query(reused, "SELECT 'still usable'")).isEqualTo("still usable");
        } finally {
            executor.shutdownNow();
        }
    }

    @Test
    void aSessionACancelWasForwardedForIsNeverPooled() throws Exception {
        // a cancel the proxy forwarded may reach the server late, when the next client's query runs on that backend
        double pooledBefore = counter("palisade.proxy.backends.pooled");
        Connection cancelling = connect(A);
        int pid = pid(cancelling);
        ExecutorService executor = Executors.newSingleThreadExecutor(Thread.ofPlatform().name("reuse-cancel")
                .factory());
        try (Statement sleeping = cancelling.createStatement()) {
            Future<?> cancelled = executor.submit(() -> sleeping.execute("SELECT pg_sleep(30)"));
            await().atMost(Duration.ofSeconds(10)).until(() -> {
                try (Connection admin = pg.connectAsAdmin()) {
                    return query(admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid
                            + " AND state = 'active'").equals("1");
                }
            });
            sleeping.cancel();
            Throwable failure = catchCause(() -> cancelled.get(20, TimeUnit.SECONDS));
            assertThat(((SQLException) failure).getSQLState()).isEqualTo("57014");
        } finally {
            executor.shutdownNow();
        }
        assertThat(query(cancelling, "SELECT 'idle again'")).isEqualTo("idle again");
        cancelling.close(); // Terminate alone, the backend idle: reusable but for the cancel
        await().atMost(Duration.ofSeconds(10)).until(() -> !backendAlive(pg, pid));
        assertThat(proxy.idleBackendConnections(A)).isZero();
        assertThat(counter("palisade.proxy.backends.pooled")).isEqualTo(pooledBefore);
    }

    @Test
    void aTerminatePipelinedBehindTheLoginEndsTheBackendAfterAWholeLogin() throws Exception {
        // the Terminate waits in the session until the backend's first ReadyForQuery and reaches the link from inside
        // the backend handler's read: the backend must not be pooled from there (it was closed mid-read before)
        double pooledBefore = counter("palisade.proxy.backends.pooled");
        List<Character> answers = new java.util.ArrayList<>();
        Socket plain = new Socket("127.0.0.1", proxy.port());
        plain.setSoTimeout(20_000);
        plain.getOutputStream().write(RawPg.sslRequest());
        assertThat(plain.getInputStream().read()).isEqualTo('S');
        try (SSLSocket socket = (SSLSocket) TestingTls.trusting(ca).getSocketFactory()
                .createSocket(plain, "127.0.0.1", proxy.port(), true)) {
            SSLParameters parameters = socket.getSSLParameters();
            parameters.setServerNames(List.of(new SNIHostName(A + "." + TestPostgresProxyIntegration.DOMAIN)));
            socket.setSSLParameters(parameters);
            socket.startHandshake();
            InputStream in = socket.getInputStream();
            OutputStream out = socket.getOutputStream();
            out.write(RawPg.startup(3, 0, new java.util.LinkedHashMap<>(Map.of("user", "app", "database", "app"))));
            assertThat(RawPg.read(in).int32(0)).isEqualTo(PgWire.AUTH_SASL);
            ScramClient scram = new ScramClient(pg.credentials().password());
            out.write(RawPg.saslInitial(scram.clientFirstMessage()));
            RawPg.Message serverFirst = RawPg.read(in);
            String text = new String(serverFirst.body(), 4, serverFirst.body().length - 4, StandardCharsets.UTF_8);
            byte[] last = RawPg.saslResponse(scram.clientFinalMessage(text));
            byte[] terminate = {'X', 0, 0, 0, 4};
            byte[] both = java.util.Arrays.copyOf(last, last.length + terminate.length);
            System.arraycopy(terminate, 0, both, last.length, terminate.length);
            out.write(both);
            RawPg.Message message;
            while ((message = RawPg.read(in)) != null) {
                answers.add(message.type());
            }
        }
        assertThat(answers).as("the whole login, then the close").contains('K').endsWith('Z');
        await().atMost(Duration.ofSeconds(10)).until(() -> proxy.openClientConnections() == 0
                && proxy.openBackendConnections() == 0);
        assertThat(counter("palisade.proxy.backends.pooled")).isEqualTo(pooledBefore);
    }

    @Test
    void aRoleTheLoginSetsIsStillInForceOnAReusedBackend() throws SQLException {
        // DISCARD ALL runs SET SESSION AUTHORIZATION DEFAULT, which drops a role the startup options (or ALTER ROLE
        // ... SET role) put in force, and RESET ALL does not bring it back: the next client would run as the login
        Map<String, String> asMember = Map.of("options", "endpoint=" + A + " -c role=reuse_member");
        Connection first = connect(A, pg.credentials().password(), asMember);
        int pid = pid(first);
        assertThat(query(first, "SELECT current_user")).isEqualTo("reuse_member");
        closeAndAwaitParked(first, A, 1);
        try (Connection second = connect(A, pg.credentials().password(), asMember)) {
            assertThat(pid(second)).isEqualTo(pid);
            assertThat(query(second, "SELECT current_user || ' ' || session_user")).isEqualTo("reuse_member app");
        }
    }

    private interface Action {
        void run() throws Exception;
    }

    private static Throwable catchCause(Action action) {
        try {
            action.run();
            return null;
        } catch (java.util.concurrent.ExecutionException e) {
            return e.getCause();
        } catch (Exception e) {
            return e;
        }
    }
}
