package io.palisade.server.console;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.NullNode;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.net.Socket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * The console's way into palisade: HTTP requests to the API's own port on loopback, with the signed-in user's API key
 * as the Bearer token, so everything the console shows or does passes exactly the API's authentication, ownership
 * checks and validation (another account's database is "not found" here as there). SQL goes to the broker's
 * {@code /sql} on the same port with the database's own credentials. Over TLS it trusts exactly the API's
 * certificate. Thread-safe.
 */
public final class LoopbackApi {
    static final ObjectMapper JSON = new ObjectMapper();

    private final Supplier<URI> base;
    private final HttpClient http;

    /**
     * @param base the API's loopback address, e.g. {@code http://127.0.0.1:8080} (asked on each request: the port is
     *     known only once the server listens)
     * @param certificateFile the API's TLS certificate when it serves HTTPS
     */
    public LoopbackApi(Supplier<URI> base, Optional<Path> certificateFile) {
        this.base = requireNonNull(base, "base is null");
        HttpClient.Builder builder = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5));
        certificateFile.ifPresent(file -> builder.sslContext(trusting(file)));
        this.http = builder.build();
    }

    /** An answer of the API: its status and JSON body ({@link NullNode} when empty). */
    public record Reply(int status, JsonNode body) {
        public Reply {
            requireNonNull(body, "body is null");
        }

        public boolean ok() {
            return status >= 200 && status < 300;
        }

        /** What went wrong, in the API's words: the problem+json {@code detail}, or the broker's {@code message}. */
        public String problem() {
            for (String field : new String[] {"detail", "message", "error"}) {
                if (body.hasNonNull(field) && !body.path(field).asText().isBlank()) {
                    return body.path(field).asText();
                }
            }
            return "the API answered " + status;
        }
    }

    public Reply get(String key, String path) {
        return send(key, "GET", path, null, Map.of());
    }

    public Reply post(String key, String path, Object body) {
        return send(key, "POST", path, body, Map.of());
    }

    public Reply delete(String key, String path) {
        return send(key, "DELETE", path, null, Map.of());
    }

    /** Runs SQL on a database through the broker's {@code /sql}, logged in as the database's own user. */
    public Reply sql(String databaseId, String user, String password, String database, String sql, Duration timeout) {
        String connection = "postgres://" + enc(user) + ":" + enc(password) + "@" + databaseId + ".console/"
                + enc(database);
        return send(null, "POST", "/sql", Map.of("query", sql, "params", java.util.List.of()),
                Map.of("Neon-Connection-String", connection, "Neon-Array-Mode", "true"), timeout);
    }

    private Reply send(String key, String method, String path, Object body, Map<String, String> headers) {
        return send(key, method, path, body, headers, Duration.ofSeconds(60));
    }

    private Reply send(String key, String method, String path, Object body, Map<String, String> headers,
            Duration timeout) {
        try {
            HttpRequest.Builder request = HttpRequest.newBuilder(base.get().resolve(path)).timeout(timeout);
            try {
                if (key != null) {
                    request.header("Authorization", "Bearer " + key);
                }
                headers.forEach(request::header);
            } catch (IllegalArgumentException e) {
                // not e's message: the HTTP client quotes the refused value, which carries a key or a password
                throw new PalisadeException(ErrorCode.INVALID_REQUEST, "the console cannot send " + method + " " + path
                        + " to the API: a credential has characters an HTTP header cannot carry");
            }
            if (body == null) {
                request.method(method, HttpRequest.BodyPublishers.noBody());
            } else {
                request.header("Content-Type", "application/json");
                request.method(method, HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)));
            }
            HttpResponse<byte[]> response = http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
            byte[] bytes = response.body();
            JsonNode json = bytes.length == 0 ? NullNode.getInstance() : parse(bytes);
            return new Reply(response.statusCode(), json);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "the console could not reach the API on " + base.get()
                    + " (" + e.getClass().getSimpleName() + "); check that palisade is running and retry");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while calling the API");
        }
    }

    private static JsonNode parse(byte[] bytes) {
        try {
            return JSON.readTree(bytes);
        } catch (IOException e) {
            return JSON.createObjectNode().put("detail", new String(bytes, StandardCharsets.UTF_8));
        }
    }

    static String enc(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }

    /** Trusts exactly the API's own leaf certificate (the address is loopback, so no host name is checked). */
    private static SSLContext trusting(Path certificateFile) {
        try {
            X509Certificate own;
            try (var in = Files.newInputStream(certificateFile)) {
                own = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
            }
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, new javax.net.ssl.TrustManager[] {new OwnCertificate(own)}, null);
            return context;
        } catch (IOException | GeneralSecurityException e) {
            throw new PalisadeException(ErrorCode.INVALID_REQUEST, "the console cannot read the API's certificate "
                    + certificateFile + ": " + e.getMessage());
        }
    }

    private static final class OwnCertificate extends X509ExtendedTrustManager {
        private final X509Certificate own;

        OwnCertificate(X509Certificate own) {
            this.own = own;
        }

        private void check(X509Certificate[] chain) throws CertificateException {
            if (chain == null || chain.length == 0 || !chain[0].equals(own)) {
                throw new CertificateException("the loopback API presented another certificate than its own");
            }
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            check(chain);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            check(chain);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            check(chain);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            throw new CertificateException("not a server");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            throw new CertificateException("not a server");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            throw new CertificateException("not a server");
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }
}
