package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.palisade.host.PostgresBinaries;
import io.palisade.host.Processes;
import io.palisade.spi.PostgresVersion;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import io.palisade.testing.TestingTls;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The proxy in front of two real PostgreSQL 16 servers, driven by real clients: PgJDBC, psql 15 (libpq), node-postgres,
 * and hand-built protocol bytes for what those clients never send.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestPostgresProxyIntegration {
    static final String DOMAIN = "db.localhost";
    static final String A = "db-aaaa1111";
    static final String B = "db-bbbb2222";
    static final String UNKNOWN = "db-zzzz9999";
    static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(60);

    private TestingPostgres pgA;
    private TestingPostgres pgB;
    private Path workDir;
    private FakeResolver resolver;
    private SimpleMeterRegistry registry;
    private PostgresProxy proxy;
    private Path ca;

    @BeforeAll
    void setUp() {
        pgA = new TestingPostgres();
        pgB = new TestingPostgres();
        workDir = TestingDirectories.newWorkDir("proxy");
        resolver = new FakeResolver().put(A, pgA.endpoint(), pgA.credentials())
                .put(B, pgB.endpoint(), pgB.credentials());
        registry = new SimpleMeterRegistry();
        proxy = new PostgresProxy(config(), resolver, resolver, registry).start();
        ca = proxy.tlsMaterial().caCertificateFile().orElseThrow();
    }

    private ProxyConfig config() {
        return ProxyConfig.defaults(DOMAIN, workDir.resolve("tls")).withBind("127.0.0.1", 0);
    }

    @AfterAll
    void tearDown() {
        if (proxy != null) {
            proxy.close();
        }
        if (pgA != null) {
            pgA.close();
        }
        if (pgB != null) {
            pgB.close();
        }
        TestingDirectories.deleteRecursively(workDir);
    }

    @AfterEach
    void nothingLeaked() {
        assertNothingLeaked(proxy);
    }

    static void assertNothingLeaked(PostgresProxy proxy) {
        await().atMost(Duration.ofSeconds(15)).untilAsserted(() -> {
            assertThat(proxy.openClientConnections()).as("client connections").isZero();
            assertThat(proxy.openBackendConnections() - proxy.idleBackendConnections())
                    .as("backend connections besides those parked for reuse").isZero();
            assertThat(proxy.registeredCancelKeys()).as("cancel keys").isZero();
            assertThat(proxy.activeConnections(A)).as("connections to A").isZero();
            assertThat(proxy.activeConnections(B)).as("connections to B").isZero();
        });
    }

    // ---- PgJDBC ----

    Connection jdbc(PostgresProxy target, String endpointOption, String password) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", "app");
        properties.setProperty("password", password);
        properties.setProperty("sslmode", "verify-full");
        properties.setProperty("sslrootcert", ca.toString());
        properties.setProperty("options", "endpoint=" + endpointOption);
        properties.setProperty("connectTimeout", "20");
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + target.port() + "/app", properties);
    }

    Connection jdbc(String endpointOption, String password) throws SQLException {
        return jdbc(proxy, endpointOption, password);
    }

    static String queryString(Connection connection, String sql) throws SQLException {
        try (Statement statement = connection.createStatement(); ResultSet rs = statement.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }

    @Test
    void pgjdbcOptionsFormWithVerifyFull() throws Exception {
        var handshakes = registry.find("palisade.proxy.handshake").tag("database", A).timer();
        long handshakesBefore = handshakes == null ? 0 : handshakes.count();
        try (Connection connection = jdbc(A, pgA.credentials().password())) {
            assertThat(queryString(connection, "SELECT current_user || '@' || current_database()"))
                    .isEqualTo("app@app");
            assertThat(queryString(connection, "SELECT current_setting('port')"))
                    .isEqualTo(Integer.toString(pgA.endpoint().port()));
            assertThat(proxy.activeConnections(A)).isEqualTo(1);
            assertThat(registry.get("palisade.proxy.connections").tag("database", A).gauge().value()).isEqualTo(1.0);
            assertThat(registry.get("palisade.proxy.bytes.received").tag("database", A).counter().count())
                    .isPositive();
            assertThat(registry.get("palisade.proxy.bytes.sent").tag("database", A).counter().count()).isPositive();
            assertThat(registry.get("palisade.proxy.handshake").tag("database", A).timer().count())
                    .isEqualTo(handshakesBefore + 1);
        }
        try (Connection connection = jdbc(B, pgB.credentials().password())) {
            assertThat(queryString(connection, "SELECT current_setting('port')"))
                    .isEqualTo(Integer.toString(pgB.endpoint().port()));
        }
        assertThat(resolver.touches()).isGreaterThanOrEqualTo(2);
        // meters outlive connections until the database is forgotten (deleted)
        assertThat(registry.find("palisade.proxy.bytes.sent").tag("database", B).counter()).isNotNull();
        proxy.forgetDatabase(B);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
                assertThat(registry.find("palisade.proxy.bytes.sent").tag("database", B).counter()).isNull());
    }

    @Test
    void pgjdbcOptionsAreForwardedWithoutEndpoint() throws Exception {
        // PostgreSQL itself would refuse "endpoint=..." in options, so success also proves the token was stripped
        Properties properties = new Properties();
        properties.setProperty("user", "app");
        properties.setProperty("password", pgA.credentials().password());
        properties.setProperty("sslmode", "require");
        properties.setProperty("options", "-c search_path=palisade_test endpoint=" + A + " -c work_mem=8MB");
        try (Connection connection = DriverManager.getConnection(
                "jdbc:postgresql://127.0.0.1:" + proxy.port() + "/app", properties)) {
            assertThat(queryString(connection, "SHOW search_path")).isEqualTo("palisade_test");
            assertThat(queryString(connection, "SHOW work_mem")).isEqualTo("8MB");
        }
    }

    @Test
    void pgjdbcCancelIsRoutedByProxyKey() throws Exception {
        try (Connection connection = jdbc(A, pgA.credentials().password());
                Statement statement = connection.createStatement()) {
            ExecutorService executor = Executors.newSingleThreadExecutor(Thread.ofPlatform().name("sleeper").factory());
            try {
                long start = System.nanoTime();
                Future<?> sleep = executor.submit(() -> statement.execute("SELECT pg_sleep(30)"));
                awaitActiveSleep(pgA);
                statement.cancel();
                SQLException cancelled = catchSql(() -> {
                    try {
                        sleep.get(20, TimeUnit.SECONDS);
                    } catch (java.util.concurrent.ExecutionException e) {
                        throw (Exception) e.getCause();
                    }
                });
                assertThat(cancelled.getSQLState()).isEqualTo("57014");
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(15));
                assertThat(queryString(connection, "SELECT 'still usable'")).isEqualTo("still usable");
            } finally {
                executor.shutdownNow();
            }
        }
    }

    private static void awaitActiveSleep(TestingPostgres pg) {
        await().atMost(Duration.ofSeconds(15)).pollInterval(Duration.ofMillis(100)).until(() -> {
            try (Connection admin = pg.connectAsAdmin()) {
                return Integer.parseInt(queryString(admin, "SELECT count(*) FROM pg_stat_activity"
                        + " WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")) == 1;
            }
        });
    }

    @Test
    void crossTenantAndUnknownLookTheSame() {
        SQLException wrongTenant = catchSql(() -> jdbc(B, pgA.credentials().password()).close());
        SQLException unknown = catchSql(() -> jdbc(UNKNOWN, pgA.credentials().password()).close());
        SQLException invalidId = catchSql(() -> jdbc("NOT_A..VALID_ID", pgA.credentials().password()).close());
        SQLException wrongPassword = catchSql(() -> jdbc(A, "not-the-password").close());
        for (SQLException e : List.of(wrongTenant, unknown, invalidId, wrongPassword)) {
            assertThat(e.getSQLState()).isEqualTo("28P01");
            assertThat(e.getMessage()).isEqualTo(unknown.getMessage());
        }
        assertThat(unknown.getMessage()).contains("password authentication failed for user \"app\"");
    }

    @Test
    void perDatabaseConnectionLimit() throws Exception {
        try (PostgresProxy limited = new PostgresProxy(config().withLimits(2, 100), resolver,
                resolver, new SimpleMeterRegistry()).start()) {
            try (Connection first = jdbc(limited, A, pgA.credentials().password());
                    Connection second = jdbc(limited, A, pgA.credentials().password())) {
                SQLException third = catchSql(() -> jdbc(limited, A, pgA.credentials().password()).close());
                assertThat(third.getSQLState()).isEqualTo("53300");
                assertThat(third.getMessage()).contains("Too many connections").contains(A);
                // other databases are not affected
                try (Connection other = jdbc(limited, B, pgB.credentials().password())) {
                    assertThat(queryString(other, "SELECT 1")).isEqualTo("1");
                }
                assertThat(queryString(first, "SELECT 1") + queryString(second, "SELECT 2")).isEqualTo("12");
            }
            try (Connection again = jdbc(limited, A, pgA.credentials().password())) {
                assertThat(queryString(again, "SELECT 3")).isEqualTo("3");
            }
            assertNothingLeaked(limited);
        }
    }

    @Test
    void preAuthenticationCapPerSourceAndAuthenticatedCap() throws Exception {
        ProxyConfig config = config().withLimits(10, 1).withPreAuthentication(100, 2, Duration.ofSeconds(10));
        try (PostgresProxy capped = new PostgresProxy(config, resolver, resolver, new SimpleMeterRegistry()).start();
                Socket first = new Socket("127.0.0.1", capped.port());
                Socket second = new Socket("127.0.0.1", capped.port())) {
            await().atMost(Duration.ofSeconds(10)).until(() -> capped.unauthenticatedConnections() == 2);
            try (Socket third = new Socket("127.0.0.1", capped.port())) {
                assertThat(readOrReset(third)).as("a third unauthenticated connection from one source").isEqualTo(-1);
            }
            // another source address is not affected, and an authenticated session frees its pre-auth seat
            try (Socket other = new Socket("127.0.0.1", capped.port(), java.net.InetAddress.getByName("127.0.0.2"),
                    0)) {
                other.setSoTimeout(10_000);
                other.getOutputStream().write(RawPg.sslRequest());
                assertThat(other.getInputStream().read()).isEqualTo('S');
            }
            first.close();
            second.close();
            await().atMost(Duration.ofSeconds(10)).until(() -> capped.unauthenticatedConnections() == 0);
            try (Connection owner = jdbc(capped, A, pgA.credentials().password())) {
                assertThat(capped.unauthenticatedConnections()).isZero();
                SQLException full = catchSql(() -> jdbc(capped, B, pgB.credentials().password()).close());
                assertThat(full.getSQLState()).as("the authenticated cap (1) is reached").isEqualTo("53300");
                assertThat(queryString(owner, "SELECT 1")).isEqualTo("1");
            }
            assertNothingLeaked(capped);
        }
    }

    private static int readOrReset(Socket socket) throws IOException {
        socket.setSoTimeout(10_000);
        try {
            return socket.getInputStream().read();
        } catch (java.net.SocketException reset) {
            return -1;
        }
    }

    @Test
    void timeouts() throws Exception {
        // bounds a loaded CI host meets for the logins that must succeed (TLS, SCRAM both ways, a backend fork)
        ProxyConfig config = config().withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(4), Duration.ofSeconds(4));
        try (PostgresProxy strict = new PostgresProxy(config, resolver, resolver, new SimpleMeterRegistry()).start()) {
            // a client that connects and says nothing is dropped after the handshake timeout
            try (Socket socket = new Socket("127.0.0.1", strict.port())) {
                socket.setSoTimeout(10_000);
                long start = System.nanoTime();
                assertThat(socket.getInputStream().read()).isEqualTo(-1);
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
            }
            // a client that finishes TLS but never sends a StartupMessage gets Neon's timeout error
            try (SSLSocket socket = tlsSocket(strict, A, true)) {
                socket.setSoTimeout(10_000);
                RawPg.Message error = RawPg.read(socket.getInputStream());
                assertThat(error.type()).isEqualTo('E');
                assertThat(RawPg.errorMessage(error)).isEqualTo("Authentication timed out");
            }
            // an idle relayed session is closed after the idle timeout
            try (Connection connection = jdbc(strict, A, pgA.credentials().password())) {
                assertThat(queryString(connection, "SELECT 1")).isEqualTo("1");
                Thread.sleep(6000);
                assertThat((Object) catchSql(() -> queryString(connection, "SELECT 2"))).isNotNull();
            }
            assertNothingLeaked(strict);
        }
    }

    // ---- psql (libpq 15) ----

    ExternalClient.Result psql(String conninfo, String password, String sql) {
        return ExternalClient.run(
                List.of("/usr/bin/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql),
                Map.of("PGPASSWORD", password, "PGCONNECT_TIMEOUT", "20"), null, CLIENT_TIMEOUT);
    }

    String sniConninfo(String id, String extra) {
        return "host=" + id + "." + DOMAIN + " hostaddr=127.0.0.1 port=" + proxy.port()
                + " dbname=app user=app sslmode=verify-full sslrootcert=" + ca + " " + extra;
    }

    @Test
    void psqlVerifyFullByHostname() {
        ExternalClient.Result result = psql(sniConninfo(A, ""), pgA.credentials().password(),
                "SELECT current_database() || ':' || current_setting('port') || ':' || "
                        + "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())");
        assertThat(result.exitCode()).as(result.all()).isZero();
        // the backend hop is plaintext on loopback; the client hop was verify-full TLS
        assertThat(result.stdout().strip()).isEqualTo("app:" + pgA.endpoint().port() + ":false");

        // the URL form the API returns as connection_url, usable without wildcard DNS thanks to hostaddr
        String url = "postgresql://app:" + pgA.credentials().password() + "@" + A + "." + DOMAIN + ":" + proxy.port()
                + "/app?sslmode=verify-full&sslrootcert=" + ca + "&hostaddr=127.0.0.1";
        ExternalClient.Result viaUrl = ExternalClient.run(List.of("/usr/bin/psql", "-X", "-At", url, "-c",
                "SELECT current_setting('port')"), Map.of(), null, CLIENT_TIMEOUT);
        assertThat(viaUrl.exitCode()).as(viaUrl.all()).isZero();
        assertThat(viaUrl.stdout().strip()).isEqualTo(Integer.toString(pgA.endpoint().port()));
    }

    @Test
    void psqlPasswordForm() {
        ExternalClient.Result ok = psql("host=127.0.0.1 port=" + proxy.port() + " dbname=app user=app sslmode=require",
                "endpoint=" + B + ";" + pgB.credentials().password(), "SELECT current_setting('port')");
        assertThat(ok.exitCode()).as(ok.all()).isZero();
        assertThat(ok.stdout().strip()).isEqualTo(Integer.toString(pgB.endpoint().port()));

        ExternalClient.Result wrong = psql("host=127.0.0.1 port=" + proxy.port()
                        + " dbname=app user=app sslmode=require",
                "endpoint=" + B + ";" + pgA.credentials().password(), "SELECT 1");
        ExternalClient.Result unknown = psql("host=127.0.0.1 port=" + proxy.port()
                + " dbname=app user=app sslmode=require", "endpoint=" + UNKNOWN + "$whatever", "SELECT 1");
        ExternalClient.Result missing = psql("host=127.0.0.1 port=" + proxy.port()
                + " dbname=app user=app sslmode=require", pgB.credentials().password(), "SELECT 1");
        assertThat(wrong.exitCode()).isEqualTo(2);
        assertThat(wrong.stderr()).contains("FATAL:  password authentication failed for user \"app\"");
        assertThat(unknown.stderr()).isEqualTo(wrong.stderr());
        assertThat(missing.stderr()).contains("Endpoint ID is not specified");
    }

    @Test
    void psqlCrossTenantSniMismatchAndPlaintext() {
        ExternalClient.Result wrongTenant = psql(sniConninfo(B, ""), pgA.credentials().password(), "SELECT 1");
        ExternalClient.Result unknown = psql(sniConninfo(UNKNOWN, ""), pgA.credentials().password(), "SELECT 1");
        assertThat(wrongTenant.exitCode()).isEqualTo(2);
        assertThat(fatal(wrongTenant)).isEqualTo("FATAL:  password authentication failed for user \"app\"");
        assertThat(fatal(unknown)).isEqualTo(fatal(wrongTenant));

        ExternalClient.Result mismatch = psql(sniConninfo(A, "options=endpoint=" + B), pgA.credentials().password(),
                "SELECT 1");
        assertThat(mismatch.stderr()).contains("Inconsistent project name inferred from SNI ('" + A
                + "') and project option ('" + B + "').");

        ExternalClient.Result plaintext = psql("host=127.0.0.1 port=" + proxy.port()
                + " dbname=app user=app sslmode=disable options=endpoint=" + A, pgA.credentials().password(),
                "SELECT 1");
        assertThat(plaintext.stderr()).contains("connection is insecure (try using `sslmode=require`)");

        ExternalClient.Result notUnderDomain = psql("host=a.b." + DOMAIN + " hostaddr=127.0.0.1 port=" + proxy.port()
                + " dbname=app user=app sslmode=require", pgA.credentials().password(), "SELECT 1");
        assertThat(notUnderDomain.stderr()).contains("does not name a database");
    }

    @Test
    void psqlWithPostgres17LibpqDirectTls() {
        PostgresBinaries pg17;
        try {
            pg17 = PostgresBinaries.install(TestingDirectories.cacheDir(), PostgresVersion.V17);
        } catch (RuntimeException e) {
            skipUnlessCi("no PostgreSQL 17 libpq for sslnegotiation=direct: " + e.getMessage());
            return;
        }
        double directBefore = directHandshakes();
        // Debian's psql 15 on libpq 17 (libpq.so.5 is ABI-stable): libpq 15 would reject the sslnegotiation keyword
        ExternalClient.Result result = ExternalClient.run(
                List.of("/usr/bin/psql", "-X", "-At", sniConninfo(A, "sslnegotiation=direct"), "-c",
                        "SELECT current_setting('port')"),
                Map.of("PGPASSWORD", pgA.credentials().password(), "LD_LIBRARY_PATH",
                        pg17.home().resolve("lib").toString()),
                null, CLIENT_TIMEOUT);
        assertThat(result.exitCode()).as(result.all()).isZero();
        assertThat(result.stdout().strip()).isEqualTo(Integer.toString(pgA.endpoint().port()));
        assertThat(directHandshakes()).isEqualTo(directBefore + 1);
    }

    private double directHandshakes() {
        var counter = registry.find("palisade.proxy.tls.handshakes").tag("negotiation", "direct").counter();
        return counter == null ? 0 : counter.count();
    }

    static void skipUnlessCi(String reason) {
        if ("true".equals(System.getenv("CI"))) {
            throw new AssertionError(reason + " (tests must not skip in CI)");
        }
        System.out.println("SKIPPED: " + reason);
        Assumptions.abort(reason);
    }

    private static String fatal(ExternalClient.Result result) {
        int index = result.stderr().indexOf("FATAL:");
        assertThat(index).as(result.stderr()).isNotNegative();
        return result.stderr().substring(index).strip();
    }

    @Test
    void psqlCtrlCCancelsTheRunningQuery() throws Exception {
        Path out = Files.createTempFile(workDir, "psql", ".out");
        Path err = Files.createTempFile(workDir, "psql", ".err");
        long start = System.nanoTime();
        Process psql = ExternalClient.start(
                List.of("/usr/bin/psql", "-X", "-At", sniConninfo(A, ""), "-c", "SELECT pg_sleep(30)"),
                Map.of("PGPASSWORD", pgA.credentials().password()), null, out, err);
        try {
            awaitActiveSleep(pgA);
            assertThat(Processes.signal(psql.pid(), "INT")).isTrue();
            assertThat(psql.waitFor(15, TimeUnit.SECONDS)).as("psql exits after Ctrl-C").isTrue();
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(20));
            assertThat(Files.readString(err)).contains("canceling statement due to user request");
        } finally {
            psql.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    // ---- node-postgres ----

    @Test
    void nodePostgresSniOptionsAndDirectTls() {
        Path nodeDir = TestingDirectories.repoDir().resolve("clients/node");
        Map<String, String> env = new LinkedHashMap<>();
        env.put("PROXY_PORT", Integer.toString(proxy.port()));
        env.put("PROXY_CA", ca.toString());
        env.put("PROXY_DOMAIN", DOMAIN);
        env.put("DB_ID", A);
        env.put("PGUSER", "app");
        env.put("PGPASSWORD", pgA.credentials().password());
        env.put("PGDATABASE", "app");
        ExternalClient.Result result = ExternalClient.run(List.of("node", "proxy-clients.mjs"), env, nodeDir,
                CLIENT_TIMEOUT);
        assertThat(result.exitCode()).as(result.all()).isZero();
        assertThat(result.stdout().lines().toList()).hasSize(3).allSatisfy(line -> assertThat(line)
                .contains("\"ok\":true").contains("\"db\":\"app\"").contains("\"answer\":42"));
    }

    // ---- raw protocol ----

    SSLSocket tlsSocket(PostgresProxy target, String sniId, boolean viaSslRequest) throws Exception {
        Socket plain = new Socket("127.0.0.1", target.port());
        plain.setSoTimeout(10_000);
        if (viaSslRequest) {
            plain.getOutputStream().write(RawPg.sslRequest());
            assertThat(plain.getInputStream().read()).isEqualTo('S');
        }
        SSLSocket socket = (SSLSocket) TestingTls.trusting(ca).getSocketFactory()
                .createSocket(plain, "127.0.0.1", target.port(), true);
        SSLParameters parameters = socket.getSSLParameters();
        if (sniId != null) {
            parameters.setServerNames(List.of(new SNIHostName(sniId + "." + DOMAIN)));
        }
        if (!viaSslRequest) {
            parameters.setApplicationProtocols(new String[] {"postgresql"});
        }
        socket.setSSLParameters(parameters);
        socket.startHandshake();
        return socket;
    }

    @Test
    void directTlsWithAlpnAndProtocolNegotiation() throws Exception {
        try (SSLSocket socket = tlsSocket(proxy, A, false)) {
            assertThat(socket.getApplicationProtocol()).isEqualTo("postgresql");
            Map<String, String> parameters = new LinkedHashMap<>();
            parameters.put("user", "app");
            parameters.put("database", "app");
            parameters.put("_pq_.palisade_test", "1");
            socket.getOutputStream().write(RawPg.startup(3, 2, parameters));
            RawPg.Message negotiate = RawPg.read(socket.getInputStream());
            assertThat(negotiate.type()).isEqualTo('v');
            assertThat(negotiate.int32(0)).isZero();
            assertThat(negotiate.int32(4)).isEqualTo(1);
            assertThat(negotiate.text()).contains("_pq_.palisade_test");
            RawPg.Message auth = RawPg.read(socket.getInputStream());
            assertThat(auth.type()).isEqualTo('R');
            assertThat(auth.int32(0)).isEqualTo(PgWire.AUTH_SASL);
        }
    }

    @Test
    void directTlsWithoutAlpnIsRefused() throws Exception {
        try (Socket plain = new Socket("127.0.0.1", proxy.port())) {
            plain.setSoTimeout(10_000);
            SSLSocket socket = (SSLSocket) TestingTls.trusting(ca).getSocketFactory()
                    .createSocket(plain, "127.0.0.1", proxy.port(), true);
            boolean refused;
            try {
                socket.startHandshake();
                socket.getOutputStream().write(RawPg.startup(3, 0, Map.of("user", "app")));
                refused = socket.getInputStream().read() == -1;
            } catch (IOException e) {
                refused = true;
            }
            assertThat(refused).isTrue();
        }
    }

    @Test
    void gssencRefusedThenSslAccepted() throws Exception {
        try (Socket socket = new Socket("127.0.0.1", proxy.port())) {
            socket.setSoTimeout(10_000);
            socket.getOutputStream().write(RawPg.gssencRequest());
            assertThat(socket.getInputStream().read()).isEqualTo('N');
            socket.getOutputStream().write(RawPg.sslRequest());
            assertThat(socket.getInputStream().read()).isEqualTo('S');
        }
    }

    @Test
    void mockAuthenticationForUnknownDatabase() throws Exception {
        try (SSLSocket socket = tlsSocket(proxy, UNKNOWN, true)) {
            InputStream in = socket.getInputStream();
            OutputStream out = socket.getOutputStream();
            out.write(RawPg.startup(3, 0, Map.of("user", "app", "database", "app")));
            RawPg.Message sasl = RawPg.read(in);
            assertThat(sasl.type()).isEqualTo('R');
            assertThat(sasl.int32(0)).isEqualTo(PgWire.AUTH_SASL);
            assertThat(sasl.text()).contains("SCRAM-SHA-256");
            out.write(RawPg.saslInitial("n,,n=,r=clientnonce"));
            RawPg.Message serverFirst = RawPg.read(in);
            assertThat(serverFirst.int32(0)).isEqualTo(PgWire.AUTH_SASL_CONTINUE);
            assertThat(serverFirst.text()).contains("r=clientnonce").contains(",s=").contains(",i=4096");
            out.write(RawPg.saslResponse("c=biws,r=clientnonceXYZ,p=AAAA"));
            RawPg.Message error = RawPg.read(in);
            assertThat(error.type()).isEqualTo('E');
            assertThat(RawPg.errorField(error, 'C')).isEqualTo("28P01");
            assertThat(RawPg.errorMessage(error)).isEqualTo("password authentication failed for user \"app\"");
            assertThat(in.read()).isEqualTo(-1);
        }
    }

    // ---- fuzz ----

    @Test
    void fuzzRandomAndTruncatedBytes() throws Exception {
        Random random = new Random(4242);
        List<byte[]> cases = new ArrayList<>();
        byte[] startup = RawPg.startup(3, 0, Map.of("user", "app", "database", "app", "options", "endpoint=" + A));
        for (int i = 0; i < 300; i++) {
            byte[] bytes = switch (i % 8) {
                case 0 -> randomBytes(random, 1 + random.nextInt(300));
                case 1 -> java.util.Arrays.copyOf(RawPg.sslRequest(), 1 + random.nextInt(7));
                case 2 -> java.util.Arrays.copyOf(startup, 1 + random.nextInt(startup.length - 1));
                case 3 -> concat(RawPg.sslRequest(), randomBytes(random, 1 + random.nextInt(200)));
                case 4 -> concat(new byte[] {0x16, 0x03, 0x01}, randomBytes(random, random.nextInt(400)));
                case 5 -> RawPg.cancelRequest(random.nextInt(), random.nextInt());
                case 6 -> java.nio.ByteBuffer.allocate(8).putInt(random.nextInt()).putInt(random.nextInt()).array();
                default -> concat(RawPg.gssencRequest(), randomBytes(random, random.nextInt(50)));
            };
            cases.add(bytes);
        }
        ExecutorService executor = Executors.newFixedThreadPool(16, Thread.ofPlatform().name("fuzz-", 0).factory());
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (byte[] bytes : cases) {
                futures.add(executor.submit(() -> {
                    throwBytes(bytes);
                    return null;
                }));
            }
            for (Future<?> future : futures) {
                future.get(60, TimeUnit.SECONDS);
            }
        } finally {
            executor.shutdownNow();
        }
        // random bytes inside an established TLS session
        for (int i = 0; i < 20; i++) {
            try (SSLSocket socket = tlsSocket(proxy, i % 2 == 0 ? A : null, true)) {
                socket.getOutputStream().write(randomBytes(random, 1 + random.nextInt(2000)));
                socket.shutdownOutput();
                drain(socket.getInputStream());
            } catch (IOException expected) {
                // the proxy may reset the connection; fine
            }
        }
        assertNothingLeaked(proxy);
        try (Connection connection = jdbc(A, pgA.credentials().password())) {
            assertThat(queryString(connection, "SELECT 'healthy'")).isEqualTo("healthy");
        }
    }

    private void throwBytes(byte[] bytes) {
        try (Socket socket = new Socket("127.0.0.1", proxy.port())) {
            socket.setSoTimeout(300);
            socket.getOutputStream().write(bytes);
            drain(socket.getInputStream());
        } catch (IOException expected) {
            // resets are a fine answer to garbage
        }
    }

    private static void drain(InputStream in) throws IOException {
        byte[] buffer = new byte[4096];
        try {
            while (in.read(buffer) >= 0) {
                // discard
            }
        } catch (SocketTimeoutException e) {
            // the proxy is waiting for more; closing is the client's answer
        }
    }

    private static byte[] randomBytes(Random random, int length) {
        byte[] bytes = new byte[length];
        random.nextBytes(bytes);
        return bytes;
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] result = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, result, a.length, b.length);
        return result;
    }

    interface SqlAction {
        void run() throws Exception;
    }

    static SQLException catchSql(SqlAction action) {
        try {
            action.run();
        } catch (SQLException e) {
            return e;
        } catch (Exception e) {
            throw new AssertionError("expected an SQLException", e);
        }
        throw new AssertionError("expected an SQLException, but it succeeded");
    }
}
