package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.Date;
import java.util.List;
import java.util.Optional;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The certificate and key the proxy serves. Either supplied by the operator, or generated on first start: a local CA
 * ({@code ca.crt}, {@code ca.key}) and a certificate for {@code *.<domain>}, {@code <domain>}, {@code localhost} and
 * {@code 127.0.0.1} signed by it ({@code server.crt}, {@code server.key}); keys are mode 600. Later starts reuse the
 * files, and reissue the server certificate from the same CA when the domain changed or it is about to expire, so a
 * client's {@code sslrootcert=ca.crt} keeps working. Immutable.
 *
 * @param certificateFile PEM certificate (chain) to serve
 * @param privateKeyFile PEM private key (PKCS#8) of that certificate
 * @param caCertificateFile the generated CA clients should trust, or empty for operator-supplied material
 */
public record TlsMaterial(Path certificateFile, Path privateKeyFile, Optional<Path> caCertificateFile) {
    public static final String CA_CERTIFICATE = "ca.crt";
    public static final String CA_KEY = "ca.key";
    public static final String SERVER_CERTIFICATE = "server.crt";
    public static final String SERVER_KEY = "server.key";

    private static final Duration CA_VALIDITY = Duration.ofDays(3650);
    private static final Duration SERVER_VALIDITY = Duration.ofDays(397);
    private static final Duration RENEW_BEFORE = Duration.ofDays(30);
    private static final SecureRandom RANDOM = new SecureRandom();

    public TlsMaterial {
        requireNonNull(certificateFile, "certificateFile is null");
        requireNonNull(privateKeyFile, "privateKeyFile is null");
        requireNonNull(caCertificateFile, "caCertificateFile is null");
    }

    /** The operator's files, checked to exist. */
    public static TlsMaterial operatorSupplied(Path certificateFile, Path privateKeyFile) {
        for (Path file : List.of(certificateFile, privateKeyFile)) {
            if (!Files.isReadable(file)) {
                throw new PalisadeException(ErrorCode.INVALID_REQUEST, "cannot read TLS file " + file
                        + ": check proxy.tls.certificate-file and proxy.tls.private-key-file");
            }
        }
        return new TlsMaterial(certificateFile, privateKeyFile, Optional.empty());
    }

    /** What the config asks for: the operator's files, or generated material under its TLS directory. */
    public static TlsMaterial forConfig(ProxyConfig config) {
        if (config.certificateFile().isPresent()) {
            return operatorSupplied(config.certificateFile().get(), config.privateKeyFile().orElseThrow());
        }
        return loadOrGenerate(config.tlsDirectory(), config.domain());
    }

    /**
     * Reuses or creates the local CA and the wildcard server certificate for {@code domain} under {@code directory}.
     * Safe to call from one process at a time.
     */
    public static TlsMaterial loadOrGenerate(Path directory, String domain) {
        requireNonNull(directory, "directory is null");
        requireNonNull(domain, "domain is null");
        try {
            Files.createDirectories(directory);
            Path caCert = directory.resolve(CA_CERTIFICATE);
            Path caKey = directory.resolve(CA_KEY);
            Path serverCert = directory.resolve(SERVER_CERTIFICATE);
            Path serverKey = directory.resolve(SERVER_KEY);
            X509Certificate ca;
            PrivateKey caPrivateKey;
            if (Files.exists(caCert) && Files.exists(caKey)) {
                ca = readCertificate(caCert);
                caPrivateKey = readPrivateKey(caKey);
            } else {
                KeyPair caPair = newKeyPair();
                ca = issueCa(caPair, domain);
                caPrivateKey = caPair.getPrivate();
                writeAtomically(caKey, pem(new JcaPKCS8Generator(caPrivateKey, null)), true);
                writeAtomically(caCert, pem(ca), false);
                Files.deleteIfExists(serverCert);
            }
            if (!Files.exists(serverCert) || !Files.exists(serverKey) || !covers(readCertificate(serverCert), domain)) {
                KeyPair serverPair = newKeyPair();
                X509Certificate server = issueServer(serverPair, ca, caPrivateKey, domain);
                writeAtomically(serverKey, pem(new JcaPKCS8Generator(serverPair.getPrivate(), null)), true);
                writeAtomically(serverCert, pem(server), false);
            }
            return new TlsMaterial(serverCert, serverKey, Optional.of(caCert));
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot create or read the proxy's TLS material in "
                    + directory + ": " + e.getMessage() + "; check the directory is writable, or configure"
                    + " proxy.tls.certificate-file and proxy.tls.private-key-file", e);
        } catch (GeneralSecurityException | OperatorCreationException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot generate the proxy's TLS material in " + directory
                    + ": " + e.getMessage() + "; delete the directory's *.crt/*.key files to start over", e);
        }
    }

    private static boolean covers(X509Certificate certificate, String domain) throws GeneralSecurityException {
        if (certificate.getNotAfter().toInstant().isBefore(Instant.now().plus(RENEW_BEFORE))) {
            return false;
        }
        Collection<List<?>> names = certificate.getSubjectAlternativeNames();
        if (names == null) {
            return false;
        }
        return names.stream().anyMatch(name -> ("*." + domain).equals(name.get(1)));
    }

    private static KeyPair newKeyPair() throws GeneralSecurityException {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
        return generator.generateKeyPair();
    }

    private static X509Certificate issueCa(KeyPair pair, String domain)
            throws GeneralSecurityException, OperatorCreationException, IOException {
        X500Name name = new X500Name("CN=palisade local CA for " + domain + ",O=palisade");
        Instant now = Instant.now();
        JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
                name, serial(), Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(CA_VALIDITY)), name,
                pair.getPublic());
        JcaX509ExtensionUtils utils = new JcaX509ExtensionUtils();
        builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
        builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        builder.addExtension(Extension.subjectKeyIdentifier, false, utils.createSubjectKeyIdentifier(pair.getPublic()));
        return sign(builder, pair.getPrivate());
    }

    private static X509Certificate issueServer(KeyPair pair, X509Certificate ca, PrivateKey caKey, String domain)
            throws GeneralSecurityException, OperatorCreationException, IOException {
        Instant now = Instant.now();
        JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
                ca, serial(), Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(SERVER_VALIDITY)),
                new X500Name("CN=*." + domain + ",O=palisade"), pair.getPublic());
        JcaX509ExtensionUtils utils = new JcaX509ExtensionUtils();
        builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
        builder.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth));
        builder.addExtension(Extension.subjectKeyIdentifier, false, utils.createSubjectKeyIdentifier(pair.getPublic()));
        builder.addExtension(Extension.authorityKeyIdentifier, false, utils.createAuthorityKeyIdentifier(ca));
        builder.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName[] {
            new GeneralName(GeneralName.dNSName, "*." + domain),
            new GeneralName(GeneralName.dNSName, domain),
            new GeneralName(GeneralName.dNSName, "localhost"),
            new GeneralName(GeneralName.iPAddress, InetAddress.getLoopbackAddress().getHostAddress()),
        }));
        return sign(builder, caKey);
    }

    private static X509Certificate sign(JcaX509v3CertificateBuilder builder, PrivateKey key)
            throws GeneralSecurityException, OperatorCreationException {
        ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA").build(key);
        return new JcaX509CertificateConverter().getCertificate(builder.build(signer));
    }

    private static BigInteger serial() {
        return new BigInteger(127, RANDOM).add(BigInteger.ONE);
    }

    private static String pem(Object object) throws IOException {
        StringWriter out = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
            if (object instanceof JcaPKCS8Generator generator) {
                writer.writeObject(generator);
            } else {
                writer.writeObject(object);
            }
        }
        return out.toString();
    }

    private static X509Certificate readCertificate(Path file) throws IOException, GeneralSecurityException {
        try (InputStream in = Files.newInputStream(file)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    private static PrivateKey readPrivateKey(Path file) throws IOException {
        try (Reader reader = Files.newBufferedReader(file, StandardCharsets.US_ASCII);
                PEMParser parser = new PEMParser(reader)) {
            Object object = parser.readObject();
            if (!(object instanceof PrivateKeyInfo info)) {
                throw new IOException(file + " does not hold an unencrypted PKCS#8 private key");
            }
            return new JcaPEMKeyConverter().getPrivateKey(info);
        }
    }

    private static void writeAtomically(Path target, String content, boolean secret) throws IOException {
        Path temp = target.resolveSibling(target.getFileName() + ".tmp");
        Files.deleteIfExists(temp);
        if (secret) {
            Files.createFile(temp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } else {
            Files.createFile(temp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r--r--")));
        }
        try {
            Files.writeString(temp, content, StandardCharsets.US_ASCII);
            try {
                Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException | UncheckedIOException e) {
            Files.deleteIfExists(temp);
            throw e;
        }
    }
}
