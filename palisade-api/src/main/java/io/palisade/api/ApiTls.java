package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.SecureRequestCustomizer;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.SslConnectionFactory;
import org.eclipse.jetty.util.ssl.SslContextFactory;

/**
 * HTTPS for the REST API, the broker and {@code /metrics}: a PEM certificate (chain) and its PKCS#8 private key (EC,
 * RSA or Ed25519), for example the proxy's certificate signed by palisade's generated CA. Immutable.
 */
public record ApiTls(Path certificateFile, Path privateKeyFile) {
    private static final Pattern PRIVATE_KEY =
            Pattern.compile("-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\\s]+)-----END PRIVATE KEY-----");
    private static final char[] STORE_PASSWORD = "palisade".toCharArray();

    public ApiTls {
        requireNonNull(certificateFile, "certificateFile is null");
        requireNonNull(privateKeyFile, "privateKeyFile is null");
    }

    /** The certificate and key in an in-memory key store; fails with what to fix if they cannot be read. */
    KeyStore keyStore() {
        try {
            List<? extends Certificate> chain = List.copyOf(CertificateFactory.getInstance("X.509")
                    .generateCertificates(new ByteArrayInputStream(Files.readAllBytes(certificateFile))));
            if (chain.isEmpty()) {
                throw invalid("no certificate in " + certificateFile);
            }
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("api", privateKey(), STORE_PASSWORD, chain.toArray(Certificate[]::new));
            return store;
        } catch (IOException | GeneralSecurityException e) {
            throw invalid("cannot load the API's TLS certificate " + certificateFile + " and key " + privateKeyFile
                    + ": " + e.getMessage());
        }
    }

    private PrivateKey privateKey() throws IOException {
        Matcher pem = PRIVATE_KEY.matcher(Files.readString(privateKeyFile, StandardCharsets.US_ASCII));
        if (!pem.find()) {
            throw invalid(privateKeyFile + " holds no PKCS#8 key ('BEGIN PRIVATE KEY'); convert it with "
                    + "'openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.pk8.pem'");
        }
        byte[] der = Base64.getMimeDecoder().decode(pem.group(1));
        for (String algorithm : List.of("EC", "RSA", "Ed25519")) {
            try {
                return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (GeneralSecurityException e) {
                // try the next algorithm
            }
        }
        throw invalid(privateKeyFile + " is not an EC, RSA or Ed25519 private key");
    }

    /** A Jetty connector serving HTTPS on {@code host:port} with this material. */
    Connector connector(Server server, HttpConfiguration http, String host, int port) {
        SslContextFactory.Server ssl = new SslContextFactory.Server();
        ssl.setKeyStore(keyStore());
        ssl.setKeyStorePassword(new String(STORE_PASSWORD));
        ssl.setIncludeProtocols("TLSv1.3", "TLSv1.2");
        // clients may reach the API by address (no SNI) or by a name the certificate does not list first
        http.addCustomizer(new SecureRequestCustomizer(false));
        ServerConnector connector = new ServerConnector(server, new SslConnectionFactory(ssl, "http/1.1"),
                new HttpConnectionFactory(http));
        connector.setHost(host);
        connector.setPort(port);
        return connector;
    }

    private static PalisadeException invalid(String message) {
        return new PalisadeException(ErrorCode.INVALID_REQUEST, message + "; check api.tls.certificate-file and "
                + "api.tls.private-key-file");
    }
}
