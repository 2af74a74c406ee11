package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import io.palisade.testing.TestingDirectories;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Generated TLS material (create, reuse, reissue) and the proxy config's defaults and validation. */
class TestTlsMaterialAndConfig {
    private Path dir;

    @BeforeEach
    void setUp() {
        dir = TestingDirectories.newWorkDir("tls");
    }

    @AfterEach
    void tearDown() {
        TestingDirectories.deleteRecursively(dir);
    }

    @Test
    void generatesCaAndWildcardCertificateOnceAndReusesThem() throws Exception {
        TlsMaterial first = TlsMaterial.loadOrGenerate(dir, "db.example.test");
        assertThat(first.caCertificateFile()).contains(dir.resolve("ca.crt"));
        assertThat(first.certificateFile()).isEqualTo(dir.resolve("server.crt"));
        for (String secret : List.of("ca.key", "server.key")) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(secret))))
                    .as(secret).isEqualTo("rw-------");
            assertThat(Files.readString(dir.resolve(secret))).startsWith("-----BEGIN PRIVATE KEY-----");
        }
        X509Certificate ca = read(dir.resolve("ca.crt"));
        X509Certificate server = read(dir.resolve("server.crt"));
        server.verify(ca.getPublicKey());
        assertThat(ca.getBasicConstraints()).isGreaterThanOrEqualTo(0);
        assertThat(server.getBasicConstraints()).isEqualTo(-1);
        assertThat(sans(server))
                .containsExactlyInAnyOrder("*.db.example.test", "db.example.test", "localhost", "127.0.0.1");

        String caText = Files.readString(dir.resolve("ca.crt"));
        String serverText = Files.readString(dir.resolve("server.crt"));
        TlsMaterial again = TlsMaterial.loadOrGenerate(dir, "db.example.test");
        assertThat(again).isEqualTo(first);
        assertThat(Files.readString(dir.resolve("ca.crt"))).isEqualTo(caText);
        assertThat(Files.readString(dir.resolve("server.crt"))).isEqualTo(serverText);

        // a new domain reissues the server certificate from the same CA
        TlsMaterial moved = TlsMaterial.loadOrGenerate(dir, "db.other.test");
        assertThat(Files.readString(dir.resolve("ca.crt"))).isEqualTo(caText);
        X509Certificate reissued = read(moved.certificateFile());
        reissued.verify(ca.getPublicKey());
        assertThat(sans(reissued)).contains("*.db.other.test");
    }

    @Test
    void operatorSuppliedMaterialMustExist() {
        TlsMaterial generated = TlsMaterial.loadOrGenerate(dir, "db.localhost");
        TlsMaterial operator = TlsMaterial.operatorSupplied(generated.certificateFile(), generated.privateKeyFile());
        assertThat(operator.caCertificateFile()).isEmpty();
        assertThatThrownBy(() -> TlsMaterial.operatorSupplied(dir.resolve("missing.crt"), generated.privateKeyFile()))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("missing.crt");
        ProxyConfig config = ProxyConfig.defaults("db.localhost", dir.resolve("unused"))
                .withCertificate(generated.certificateFile(), generated.privateKeyFile());
        assertThat(TlsMaterial.forConfig(config)).isEqualTo(operator);
        assertThat(Files.exists(dir.resolve("unused"))).isFalse();
    }

    @Test
    void configDefaults() {
        ProxyConfig config = ProxyConfig.defaults("db.localhost", dir);
        assertThat(config.bindHost()).isEqualTo("127.0.0.1");
        assertThat(config.port()).isEqualTo(5432);
        assertThat(config.domain()).isEqualTo("db.localhost");
        assertThat(config.certificateFile()).isEmpty();
        assertThat(config.privateKeyFile()).isEmpty();
        assertThat(config.tlsDirectory()).isEqualTo(dir);
        assertThat(config.maxConnectionsPerDatabase()).isEqualTo(100);
        assertThat(config.maxClientConnections()).isEqualTo(10_000);
        assertThat(config.handshakeTimeout()).isEqualTo(Duration.ofSeconds(10));
        assertThat(config.startupTimeout()).isEqualTo(Duration.ofSeconds(60));
        assertThat(config.idleTimeout()).isEqualTo(Duration.ofHours(1));
        assertThat(config.backendConnectTimeout()).isEqualTo(Duration.ofSeconds(10));
        assertThat(config.maxStartupPacketSize()).isEqualTo(10_000);
        assertThat(config.ioThreads()).isZero();
        assertThat(config.backendIdleTimeout()).isEqualTo(Duration.ofSeconds(30));
        assertThat(config.maxIdleBackendsPerDatabase()).isEqualTo(64);
    }

    @Test
    void eventLoopsDefaultToOnePerTwoCoresAndAtLeastOne() {
        assertThat(PostgresProxy.eventLoops(0, 1)).isEqualTo(1);
        assertThat(PostgresProxy.eventLoops(0, 2)).isEqualTo(1);
        assertThat(PostgresProxy.eventLoops(0, 3)).isEqualTo(1);
        assertThat(PostgresProxy.eventLoops(0, 16)).isEqualTo(8);
        assertThat(PostgresProxy.eventLoops(3, 2)).as("a configured number is kept").isEqualTo(3);
    }

    @Test
    void configExplicitValuesAndValidation() {
        ProxyConfig config = ProxyConfig.defaults("db.localhost", dir)
                .withBind("0.0.0.0", 6543)
                .withLimits(5, 50)
                .withTimeouts(Duration.ofSeconds(1), Duration.ofSeconds(2), Duration.ZERO)
                .withIoThreads(3)
                .withCertificate(dir.resolve("c.pem"), dir.resolve("k.pem"));
        assertThat(config.bindHost()).isEqualTo("0.0.0.0");
        assertThat(config.port()).isEqualTo(6543);
        assertThat(config.maxConnectionsPerDatabase()).isEqualTo(5);
        assertThat(config.maxClientConnections()).isEqualTo(50);
        assertThat(config.handshakeTimeout()).isEqualTo(Duration.ofSeconds(1));
        assertThat(config.startupTimeout()).isEqualTo(Duration.ofSeconds(2));
        assertThat(config.idleTimeout()).isZero();
        assertThat(config.ioThreads()).isEqualTo(3);
        assertThat(config.certificateFile()).contains(dir.resolve("c.pem"));

        ProxyConfig base = ProxyConfig.defaults("db.localhost", dir);
        assertThatThrownBy(() -> ProxyConfig.defaults("DB.Local", dir)).hasMessageContaining("proxy.domain");
        assertThatThrownBy(() -> base.withBind("127.0.0.1", 70000)).hasMessageContaining("proxy.port");
        assertThatThrownBy(() -> base.withLimits(0, 1)).hasMessageContaining("max-connections-per-database");
        assertThatThrownBy(() -> base.withTimeouts(Duration.ZERO, Duration.ofSeconds(1), Duration.ZERO))
                .hasMessageContaining("handshake-timeout");
        assertThatThrownBy(() -> new ProxyConfig("127.0.0.1", 0, "db.localhost", Optional.of(dir), Optional.empty(),
                dir, 1, 1, 1, 1, Duration.ofSeconds(1), Duration.ofSeconds(1), Duration.ofSeconds(1), Duration.ZERO,
                Duration.ofSeconds(1), 10_000, 0, Duration.ZERO, 0)).hasMessageContaining("set together");
        assertThatThrownBy(() -> base.withBackendPool(Duration.ofSeconds(-1), 1))
                .hasMessageContaining("proxy.backend-idle-timeout");
        assertThatThrownBy(() -> base.withBackendPool(Duration.ofSeconds(1), -1))
                .hasMessageContaining("proxy.max-idle-backends-per-database");
        assertThatThrownBy(() -> base.withPreAuthentication(10, 0, Duration.ofSeconds(1)))
                .hasMessageContaining("max-unauthenticated-per-source");
        assertThatThrownBy(() -> base.withPreAuthentication(10, 1, Duration.ZERO))
                .hasMessageContaining("authentication-timeout");
    }

    private static List<String> sans(X509Certificate certificate) throws Exception {
        return certificate.getSubjectAlternativeNames().stream().map(name -> (String) name.get(1)).toList();
    }

    private static X509Certificate read(Path file) throws Exception {
        try (InputStream in = Files.newInputStream(file)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }
}
