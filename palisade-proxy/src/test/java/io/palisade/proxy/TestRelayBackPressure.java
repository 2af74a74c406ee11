package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import io.palisade.testing.TestingTls;
import java.io.BufferedInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringReader;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Map;
import java.util.Properties;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.postgresql.PGConnection;

/**
 * The relay after login: large transfers both ways arrive intact through the write-whole, flush-per-burst path, and a
 * client that stops reading stops the proxy reading its backend (writability back-pressure) instead of the proxy
 * buffering the whole result.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestRelayBackPressure {
    private static final String ID = "db-relay0001";

    private TestingPostgres pg;
    private Path workDir;
    private SimpleMeterRegistry registry;
    private PostgresProxy proxy;
    private Path ca;

    @BeforeAll
    void setUp() {
        pg = new TestingPostgres();
        workDir = TestingDirectories.newWorkDir("proxy-relay");
        FakeResolver resolver = new FakeResolver().put(ID, pg.endpoint(), pg.credentials());
        registry = new SimpleMeterRegistry();
        proxy = new PostgresProxy(ProxyConfig.defaults(TestPostgresProxyIntegration.DOMAIN, workDir.resolve("tls"))
                .withBind("127.0.0.1", 0), resolver, resolver, registry).start();
        ca = proxy.tlsMaterial().caCertificateFile().orElseThrow();
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

    @Test
    void largeCopyInAndLargeResultArriveIntact() throws Exception {
        Properties properties = new Properties();
        properties.setProperty("user", "app");
        properties.setProperty("password", pg.credentials().password());
        properties.setProperty("sslmode", "verify-full");
        properties.setProperty("sslrootcert", ca.toString());
        properties.setProperty("options", "endpoint=" + ID);
        try (Connection connection = DriverManager.getConnection(
                "jdbc:postgresql://127.0.0.1:" + proxy.port() + "/app", properties);
                Statement statement = connection.createStatement()) {
            statement.execute("CREATE TABLE relay_rows (n int, payload text)");
            StringBuilder copy = new StringBuilder();
            String payload = "y".repeat(200);
            for (int n = 0; n < 50_000; n++) {
                copy.append(n).append('\t').append(payload).append(n % 10).append('\n');
            }
            long copied = connection.unwrap(PGConnection.class).getCopyAPI()
                    .copyIn("COPY relay_rows FROM STDIN", new StringReader(copy.toString()));
            assertThat(copied).isEqualTo(50_000);
            long rows = 0;
            long sum = 0;
            long bytes = 0;
            try (ResultSet rs = statement.executeQuery("SELECT n, payload FROM relay_rows ORDER BY n")) {
                while (rs.next()) {
                    assertThat(rs.getInt(1)).isEqualTo(rows);
                    sum += rs.getInt(1);
                    bytes += rs.getString(2).length();
                    rows++;
                }
            }
            assertThat(rows).isEqualTo(50_000);
            assertThat(sum).isEqualTo(50_000L * 49_999 / 2);
            assertThat(bytes).isEqualTo(50_000L * 201);
            statement.execute("DROP TABLE relay_rows");
        }
    }

    @Test
    void aClientThatStopsReadingStopsTheBackendRead() throws Exception {
        int rows = 200_000;
        int rowBytes = 500;
        try (Socket plain = new Socket("127.0.0.1", proxy.port())) {
            plain.setSoTimeout(30_000);
            // small receive buffer so the stall is visible well before the result is through
            plain.setReceiveBufferSize(64 * 1024);
            plain.getOutputStream().write(RawPg.sslRequest());
            assertThat(plain.getInputStream().read()).isEqualTo('S');
            SSLSocket socket = (SSLSocket) TestingTls.trusting(ca).getSocketFactory()
                    .createSocket(plain, "127.0.0.1", proxy.port(), true);
            InputStream in = new BufferedInputStream(socket.getInputStream(), 1 << 16);
            OutputStream out = socket.getOutputStream();
            out.write(RawPg.startup(3, 0, Map.of("user", "app", "database", "app")));
            RawPg.Message auth = RawPg.read(in);
            assertThat(auth.type()).isEqualTo('R');
            assertThat(auth.int32(0)).isEqualTo(PgWire.AUTH_CLEARTEXT);
            out.write(RawPg.password("endpoint=" + ID + ";" + pg.credentials().password()));
            RawPg.Message message;
            do {
                message = RawPg.read(in);
                assertThat(message).isNotNull();
                assertThat(message.type()).isNotEqualTo('E');
            } while (message.type() != 'Z');
            double sentBefore = bytesSent();
            out.write(query("SELECT repeat('x', " + rowBytes + ") FROM generate_series(1, " + rows + ")"));
            out.flush();
            // the client reads nothing for a while: the proxy must not pull the ~100 MB result into its memory
            Thread.sleep(2_000);
            double stalled = bytesSent() - sentBefore;
            long total = (long) rows * (rowBytes + 11);
            assertThat(stalled).as("bytes relayed to a client that reads nothing").isLessThan(total / 4.0);
            long dataRows = 0;
            do {
                message = RawPg.read(in);
                assertThat(message).isNotNull();
                if (message.type() == 'D') {
                    dataRows++;
                }
            } while (message.type() != 'Z');
            assertThat(dataRows).isEqualTo(rows);
            assertThat(bytesSent() - sentBefore).isGreaterThan(total);
        }
    }

    private double bytesSent() {
        var counter = registry.find("palisade.proxy.bytes.sent").tag("database", ID).counter();
        return counter == null ? 0 : counter.count();
    }

    private static byte[] query(String sql) {
        byte[] text = sql.getBytes(StandardCharsets.UTF_8);
        byte[] message = new byte[1 + 4 + text.length + 1];
        message[0] = 'Q';
        int length = 4 + text.length + 1;
        message[1] = (byte) (length >>> 24);
        message[2] = (byte) (length >>> 16);
        message[3] = (byte) (length >>> 8);
        message[4] = (byte) length;
        System.arraycopy(text, 0, message, 5, text.length);
        return message;
    }
}
