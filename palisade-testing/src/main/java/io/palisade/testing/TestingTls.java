package io.palisade.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/** TLS for test clients of palisade's listeners. Stateless, safe to share. */
public final class TestingTls {
    private TestingTls() {}

    /** A client context that trusts exactly the CA certificate (PEM) in {@code caFile}, e.g. palisade's tls/ca.crt. */
    public static SSLContext trusting(Path caFile) {
        try {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            try (InputStream in = Files.newInputStream(caFile)) {
                store.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
            }
            TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            trust.init(store);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return context;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the CA certificate " + caFile, e);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot trust the CA certificate in " + caFile + ": " + e.getMessage(), e);
        }
    }
}
