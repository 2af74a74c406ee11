package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.palisade.pgwire.ScramClient;
import io.palisade.pgwire.ScramVerifier;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import io.palisade.testing.TestingTls;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
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

/**
 * The login is checked on the host before anything is spent on the tenant, against a real PostgreSQL 16 behind the
 * proxy: an unknown id and a wrong password are byte-identical, nothing is resolved (which would wake a suspended
 * database) until the password is proven, a flood of unauthenticated connections takes no slot of the owner's, the
 * authentication deadline holds, refused startup parameters answer the same for every id, a malformed first packet is
 * closed silently, and a rotated password takes effect at once.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestHostAuthentication {
    private static final String DOMAIN = TestPostgresProxyIntegration.DOMAIN;
    private static final String A = "db-host0001";
    private static final String LATE = "db-host0002";
    private static final String ROTATING = "db-host0003";
    private static final String UNKNOWN = "db-nobody01";

    private TestingPostgres pg;
    private Path workDir;
    private FakeResolver resolver;
    private PostgresProxy proxy;
    private Path ca;

    @BeforeAll
    void setUp() throws SQLException {
        pg = new TestingPostgres();
        try (Connection c = pg.connectAsAdmin(); Statement s = c.createStatement()) {
            s.execute("CREATE ROLE rot LOGIN PASSWORD '" + ScramVerifier.of("rot-password-1") + "'");
            s.execute("CREATE DATABASE rot OWNER rot");
            s.execute("CREATE ROLE other LOGIN PASSWORD '" + ScramVerifier.of(pg.credentials().password()) + "'");
            s.execute("GRANT CONNECT ON DATABASE app TO other");
        }
        workDir = TestingDirectories.newWorkDir("proxy-hostauth");
        resolver = new FakeResolver()
                .put(A, pg.endpoint(), pg.credentials())
                .put(ROTATING, pg.endpoint(), new TenantCredentials("rot", "rot", "rot-password-1"));
        proxy = new PostgresProxy(config(), resolver, resolver, new SimpleMeterRegistry()).start();
        ca = proxy.tlsMaterial().caCertificateFile().orElseThrow();
    }

    private ProxyConfig config() {
        return ProxyConfig.defaults(DOMAIN, workDir.resolve("tls")).withBind("127.0.0.1", 0)
                .withPreAuthentication(1000, 16, Duration.ofSeconds(60))
                .withTimeouts(Duration.ofSeconds(10), Duration.ofSeconds(90), Duration.ofHours(1));
    }

    @AfterAll
    void tearDown() {
        if (proxy != null) {
            proxy.close();
        }
        if (pg != null) {
            pg.close();
        }
        TestingDirectories.deleteRecursively(workDir);
    }

    @AfterEach
    void nothingLeaked() {
        await().atMost(Duration.ofSeconds(15)).untilAsserted(() -> {
            assertThat(proxy.openClientConnections()).as("client connections").isZero();
            assertThat(proxy.openBackendConnections() - proxy.idleBackendConnections())
                    .as("backend connections besides those parked for reuse").isZero();
            assertThat(proxy.unauthenticatedConnections()).as("unauthenticated").isZero();
            assertThat(proxy.activeConnections(A)).as("slots of A").isZero();
        });
    }

    // ---- clients ----

    private Connection jdbc(String id, String user, String database, String password) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", user);
        properties.setProperty("password", password);
        properties.setProperty("sslmode", "verify-full");
        properties.setProperty("sslrootcert", ca.toString());
        properties.setProperty("options", "endpoint=" + id);
        properties.setProperty("connectTimeout", "20");
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + proxy.port() + "/" + database, properties);
    }

    private SSLSocket tls(PostgresProxy target, String sniId, InetAddress source) throws Exception {
        Socket plain = source == null ? new Socket("127.0.0.1", target.port())
                : new Socket(InetAddress.getLoopbackAddress(), target.port(), source, 0);
        plain.setSoTimeout(20_000);
        plain.getOutputStream().write(RawPg.sslRequest());
        assertThat(plain.getInputStream().read()).isEqualTo('S');
        SSLSocket socket = (SSLSocket) TestingTls.trusting(ca).getSocketFactory()
                .createSocket(plain, "127.0.0.1", target.port(), true);
        if (sniId != null) {
            SSLParameters parameters = socket.getSSLParameters();
            parameters.setServerNames(List.of(new SNIHostName(sniId + "." + DOMAIN)));
            socket.setSSLParameters(parameters);
        }
        socket.startHandshake();
        return socket;
    }

    private static Map<String, String> login(String user, String database) {
        Map<String, String> parameters = new LinkedHashMap<>();
        parameters.put("user", user);
        parameters.put("database", database);
        return parameters;
    }

    /**
     * A SCRAM login by hand with a fixed client nonce; returns every message the proxy sent, type byte and length
     * included, with the random server nonce masked.
     */
    private List<String> scramTranscript(String id, String password) throws Exception {
        List<String> transcript = new ArrayList<>();
        try (SSLSocket socket = tls(proxy, id, null)) {
            InputStream in = socket.getInputStream();
            OutputStream out = socket.getOutputStream();
            out.write(RawPg.startup(3, 0, login("app", "app")));
            RawPg.Message sasl = record(transcript, RawPg.read(in));
            assertThat(sasl.int32(0)).isEqualTo(PgWire.AUTH_SASL);
            ScramClient client = new ScramClient("", password, "fixedclientnonce");
            out.write(RawPg.saslInitial(client.clientFirstMessage()));
            RawPg.Message serverFirst = RawPg.read(in);
            String text = new String(serverFirst.body(), 4, serverFirst.body().length - 4, StandardCharsets.UTF_8);
            transcript.add("R" + serverFirst.body().length + ":" + text.replaceAll("r=fixedclientnonce[^,]*,",
                    "r=fixedclientnonce<server>,"));
            out.write(RawPg.saslResponse(client.clientFinalMessage(text)));
            RawPg.Message next;
            while ((next = RawPg.read(in)) != null) {
                record(transcript, next);
                if (next.type() == 'E' || next.type() == 'Z') {
                    break;
                }
            }
            if (next != null && next.type() == 'E') {
                assertThat(in.read()).as("closed after the error").isEqualTo(-1);
            }
        }
        return transcript;
    }

    private static RawPg.Message record(List<String> transcript, RawPg.Message message) {
        transcript.add(message.type() + java.util.HexFormat.of().formatHex(message.body()));
        return message;
    }

    /** The bytes the proxy answers a raw startup packet with, until it closes. */
    private byte[] answerTo(String id, byte[] startup) throws Exception {
        try (SSLSocket socket = tls(proxy, id, null)) {
            socket.getOutputStream().write(startup);
            return socket.getInputStream().readAllBytes();
        }
    }

    // ---- tests ----

    @Test
    void unknownIdAndWrongPasswordAreByteIdenticalAndNothingIsResolved() throws Exception {
        List<String> whileUnknown = scramTranscript(LATE, "a-guess");
        resolver.put(LATE, pg.endpoint(), pg.credentials());
        List<String> wrongPassword = scramTranscript(LATE, "a-guess");
        assertThat(wrongPassword).isEqualTo(whileUnknown);
        assertThat(wrongPassword.getLast()).startsWith("E");
        assertThat(resolver.resolves(LATE)).as("a wrong password resolves (wakes) nothing").isZero();

        List<String> right = scramTranscript(LATE, pg.credentials().password());
        assertThat(right).anySatisfy(m -> assertThat(m).startsWith("R00000000"));  // AuthenticationOk
        assertThat(right.getLast()).startsWith("Z");
        assertThat(right.get(2)).as("AuthenticationSASLFinal").startsWith("R0000000c");
        assertThat(resolver.resolves(LATE)).isEqualTo(1);
    }

    @Test
    void wrongPasswordsAndOtherUsersNeverResolve() throws Exception {
        int before = resolver.resolves(A);
        int lookups = resolver.lookups();
        for (int i = 0; i < 3; i++) {
            SQLException wrong = TestPostgresProxyIntegration.catchSql(() -> jdbc(A, "app", "app", "nope").close());
            assertThat(wrong.getSQLState()).isEqualTo("28P01");
        }
        // a role the tenant created on its own server: refused on the host like a wrong password, nothing woken
        SQLException other = TestPostgresProxyIntegration.catchSql(
                () -> jdbc(A, "other", "app", pg.credentials().password()).close());
        assertThat(other.getSQLState()).isEqualTo("28P01");
        assertThat(other.getMessage()).contains("password authentication failed for user \"other\"");
        // the cleartext route is checked on the host the same way
        try (SSLSocket socket = tls(proxy, null, null)) {
            socket.getOutputStream().write(RawPg.startup(3, 0, login("app", "app")));
            assertThat(RawPg.read(socket.getInputStream()).int32(0)).isEqualTo(PgWire.AUTH_CLEARTEXT);
            socket.getOutputStream().write(RawPg.password("endpoint=" + A + ";nope"));
            RawPg.Message error = RawPg.read(socket.getInputStream());
            assertThat(RawPg.errorField(error, 'C')).isEqualTo("28P01");
        }
        assertThat(resolver.resolves(A)).as("no resolve (no wake) before a proven login").isEqualTo(before);
        assertThat(resolver.lookups()).isGreaterThan(lookups);

        try (Connection owner = jdbc(A, "app", "app", pg.credentials().password())) {
            assertThat(TestPostgresProxyIntegration.queryString(owner, "SELECT current_user")).isEqualTo("app");
        }
        assertThat(resolver.resolves(A)).isEqualTo(before + 1);
    }

    @Test
    void aFloodOfUnauthenticatedConnectionsDoesNotLockOutTheOwner() throws Exception {
        int before = resolver.resolves(A);
        List<SSLSocket> held = new ArrayList<>();
        ExecutorService executor = Executors.newFixedThreadPool(8, Thread.ofPlatform().name("flood-", 0).factory());
        try {
            List<Future<SSLSocket>> futures = new ArrayList<>();
            for (int i = 0; i < 112; i++) {
                InetAddress source = InetAddress.getByName("127.0.0." + (2 + i / 16));
                futures.add(executor.submit(() -> {
                    SSLSocket socket = tls(proxy, A, source);
                    socket.getOutputStream().write(RawPg.startup(3, 0, login("app", "app")));
                    assertThat(RawPg.read(socket.getInputStream()).int32(0)).isEqualTo(PgWire.AUTH_SASL);
                    return socket;
                }));
            }
            for (Future<SSLSocket> future : futures) {
                held.add(future.get(120, TimeUnit.SECONDS));
            }
            assertThat(proxy.unauthenticatedConnections()).isEqualTo(112);
            assertThat(proxy.activeConnections(A)).as("no slot is taken before authentication").isZero();
            // a 17th from a source that already holds 16 is closed at once
            try (Socket extra = new Socket(InetAddress.getLoopbackAddress(), proxy.port(),
                    InetAddress.getByName("127.0.0.2"), 0)) {
                extra.setSoTimeout(10_000);
                int read;
                try {
                    read = extra.getInputStream().read();
                } catch (java.net.SocketException reset) {
                    read = -1;
                }
                assertThat(read).isEqualTo(-1);
            }
            try (Connection owner = jdbc(A, "app", "app", pg.credentials().password())) {
                assertThat(TestPostgresProxyIntegration.queryString(owner, "SELECT 'owner works'"))
                        .isEqualTo("owner works");
                assertThat(proxy.activeConnections(A)).isEqualTo(1);
            }
            assertThat(resolver.resolves(A)).as("only the owner's login resolved").isEqualTo(before + 1);
        } finally {
            executor.shutdownNow();
            for (SSLSocket socket : held) {
                socket.close();
            }
        }
    }

    @Test
    void theAuthenticationDeadlineClosesAStalledLogin() throws Exception {
        // 2 s: the login below that is proven in time (TLS, SCRAM with a cold secret cache) must fit on a loaded host
        ProxyConfig strict = config().withPreAuthentication(1000, 16, Duration.ofSeconds(2));
        try (PostgresProxy deadline = new PostgresProxy(strict, resolver, resolver, new SimpleMeterRegistry())
                .start()) {
            try (SSLSocket socket = tls(deadline, A, null)) {
                long start = System.nanoTime();
                socket.getOutputStream().write(RawPg.startup(3, 0, login("app", "app")));
                assertThat(RawPg.read(socket.getInputStream()).int32(0)).isEqualTo(PgWire.AUTH_SASL);
                RawPg.Message error = RawPg.read(socket.getInputStream());
                assertThat(error.type()).isEqualTo('E');
                assertThat(RawPg.errorMessage(error)).isEqualTo("Authentication timed out");
                assertThat(socket.getInputStream().read()).isEqualTo(-1);
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
            }
            // a login that is proven in time goes on (the deadline is for authentication, not for the session)
            Properties properties = new Properties();
            properties.setProperty("user", "app");
            properties.setProperty("password", pg.credentials().password());
            properties.setProperty("sslmode", "require");
            properties.setProperty("options", "endpoint=" + A);
            try (Connection owner = DriverManager.getConnection(
                    "jdbc:postgresql://127.0.0.1:" + deadline.port() + "/app", properties)) {
                Thread.sleep(2500);
                assertThat(TestPostgresProxyIntegration.queryString(owner, "SELECT 1")).isEqualTo("1");
            }
        }
    }

    @Test
    void refusedStartupParametersAnswerTheSameForKnownAndUnknownIds() throws Exception {
        int before = resolver.resolves(A);
        byte[] replication = RawPg.startup(3, 0, Map.of("user", "app", "database", "app", "replication",
                "database"));
        // what a URL-decoded "app%00replication%00database" user name turns into on the wire
        byte[] smuggled = startupPairs("user", "app", "replication", "database", "database", "app");
        byte[] notUtf8 = RawPg.startup(3, 0, Map.of("user", "app", "database", "app"));
        notUtf8[notUtf8.length - 3] = (byte) 0xff; // the last byte of the value "app"
        for (byte[] startup : List.of(replication, smuggled, notUtf8)) {
            byte[] known = answerTo(A, startup);
            byte[] unknown = answerTo(UNKNOWN, startup);
            assertThat(known).isEqualTo(unknown);
            assertThat(known[0]).isEqualTo((byte) 'E');
            RawPg.Message error = RawPg.read(new java.io.ByteArrayInputStream(known));
            assertThat(RawPg.errorField(error, 'C')).isIn("0A000", "08P01");
        }
        assertThat(resolver.resolves(A)).as("no PostgreSQL was asked").isEqualTo(before);
    }

    private static byte[] startupPairs(String... pairs) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        for (String part : pairs) {
            body.writeBytes(part.getBytes(StandardCharsets.UTF_8));
            body.write(0);
        }
        body.write(0);
        return ByteBuffer.allocate(8 + body.size()).putInt(8 + body.size()).putInt(3 << 16).put(body.toByteArray())
                .array();
    }

    @Test
    void terminateBeforeSslRequestIsClosedSilently() throws IOException {
        try (Socket socket = new Socket("127.0.0.1", proxy.port())) {
            socket.setSoTimeout(10_000);
            socket.getOutputStream().write(new byte[] {'X', 0, 0, 0, 4});
            assertThat(socket.getInputStream().readAllBytes()).isEmpty();
        }
    }

    @Test
    void aRotatedPasswordTakesEffectAtOnce() throws Exception {
        try (Connection first = jdbc(ROTATING, "rot", "rot", "rot-password-1")) {
            assertThat(TestPostgresProxyIntegration.queryString(first, "SELECT current_user")).isEqualTo("rot");
        }
        try (Connection admin = pg.connectAsAdmin(); Statement s = admin.createStatement()) {
            s.execute("ALTER ROLE rot PASSWORD '" + ScramVerifier.of("rot-password-2") + "'");
        }
        resolver.login(ROTATING, new TenantCredentials("rot", "rot", "rot-password-2"));
        SQLException old = TestPostgresProxyIntegration.catchSql(
                () -> jdbc(ROTATING, "rot", "rot", "rot-password-1").close());
        assertThat(old.getSQLState()).isEqualTo("28P01");
        try (Connection rotated = jdbc(ROTATING, "rot", "rot", "rot-password-2")) {
            assertThat(TestPostgresProxyIntegration.queryString(rotated, "SELECT current_database()"))
                    .isEqualTo("rot");
        }
    }
}
