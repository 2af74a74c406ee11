package io.palisade.cli;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * A small client of the REST API for the CLI. Thread-safe. Turns problem+json answers into PalisadeException. An
 * {@code https://} API whose certificate palisade's generated CA signed ({@code api.tls.enabled}) is trusted through
 * {@code PALISADE_API_CA} (the path of that CA's certificate, {@code <data-dir>/tls/ca.crt}).
 */
public final class ApiClient {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final URI base;
    private final String apiKey;
    private final HttpClient http = client(System.getenv("PALISADE_API_CA"));

    public ApiClient(URI base, String apiKey) {
        this.base = requireNonNull(base, "base is null");
        this.apiKey = apiKey;
    }

    private static HttpClient client(String caFile) {
        HttpClient.Builder builder = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5));
        if (caFile == null || caFile.isBlank()) {
            return builder.build();
        }
        try (var in = java.nio.file.Files.newInputStream(java.nio.file.Path.of(caFile))) {
            java.security.KeyStore store = java.security.KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setCertificateEntry("palisade-ca",
                    java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in));
            javax.net.ssl.TrustManagerFactory trust = javax.net.ssl.TrustManagerFactory.getInstance(
                    javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
            trust.init(store);
            javax.net.ssl.SSLContext context = javax.net.ssl.SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return builder.sslContext(context).build();
        } catch (IOException | java.security.GeneralSecurityException e) {
            throw PalisadeException.invalid("cannot use PALISADE_API_CA=" + caFile + " as the API's CA certificate: "
                    + e.getMessage());
        }
    }

    public JsonNode get(String path) {
        return send(HttpRequest.newBuilder(resolve(path)).GET());
    }

    public JsonNode post(String path, Object body) {
        try {
            return send(HttpRequest.newBuilder(resolve(path))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(MAPPER.writeValueAsString(body))));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public JsonNode delete(String path) {
        return send(HttpRequest.newBuilder(resolve(path)).DELETE());
    }

    private URI resolve(String path) {
        String root = base.toString().endsWith("/") ? base.toString().substring(0, base.toString().length() - 1) : base.toString();
        return URI.create(root + path);
    }

    private JsonNode send(HttpRequest.Builder builder) {
        if (apiKey == null || apiKey.isBlank()) {
            throw new PalisadeException(ErrorCode.UNAUTHENTICATED,
                    "no API key: set PALISADE_API_KEY or pass --api-key (serve prints the bootstrap key on first start)");
        }
        builder.header("Authorization", "Bearer " + apiKey).timeout(Duration.ofMinutes(5));
        HttpResponse<String> response;
        try {
            response = http.send(builder.build(), HttpResponse.BodyHandlers.ofString());
        } catch (ConnectException e) {
            throw new PalisadeException(ErrorCode.NOT_READY,
                    "cannot reach palisade at " + base + " (is 'palisade serve' running? set PALISADE_API_URL)");
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "request to " + base + " failed: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted");
        }
        JsonNode body = parse(response.body());
        if (response.statusCode() >= 400) {
            String detail = body != null && body.hasNonNull("detail") ? body.get("detail").asText()
                    : "HTTP " + response.statusCode();
            ErrorCode code = ErrorCode.fromHttpStatus(response.statusCode());
            if (body != null && body.hasNonNull("code")) {
                for (ErrorCode candidate : ErrorCode.values()) {
                    if (candidate.slug().equals(body.get("code").asText())) {
                        code = candidate;
                    }
                }
            }
            throw new PalisadeException(code, detail);
        }
        return body;
    }

    private static JsonNode parse(String text) {
        if (text == null || text.isBlank()) {
            return MAPPER.createObjectNode();
        }
        try {
            return MAPPER.readTree(text);
        } catch (IOException e) {
            return MAPPER.createObjectNode().put("detail", text.length() > 200 ? text.substring(0, 200) : text);
        }
    }
}
