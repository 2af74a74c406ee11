package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.testing.TestingTls;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.Test;

/** {@code api.tls.enabled}: the API, broker and metrics on HTTPS with the certificate of palisade's generated CA. */
class TestApiTls {
    @Test
    void theApiServesHttpsThatVerifiesAgainstTheGeneratedCaAndNoPlainHttp() throws Exception {
        try (TestingPalisade palisade = new TestingPalisade(Map.of("api.tls.enabled", "true"))) {
            int port = palisade.server().apiPort();
            Path ca = palisade.dataDir().resolve("tls/ca.crt");
            HttpClient trusting = HttpClient.newBuilder().sslContext(TestingTls.trusting(ca))
                    .connectTimeout(Duration.ofSeconds(5)).build();

            for (String host : new String[] {"localhost", "127.0.0.1"}) {
                HttpResponse<String> health = trusting.send(HttpRequest.newBuilder(
                        URI.create("https://" + host + ":" + port + "/v1/health")).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertThat(health.statusCode()).isEqualTo(200);
                var body = new ObjectMapper().readTree(health.body());
                assertThat(body.path("api").path("tls").asBoolean()).isTrue();
                assertThat(body.path("api").path("ca_certificate").asText()).isEqualTo(ca.toString());
            }
            HttpResponse<String> list = trusting.send(HttpRequest.newBuilder(
                    URI.create("https://127.0.0.1:" + port + "/v1/databases"))
                    .header("Authorization", "Bearer " + palisade.adminKey()).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(list.statusCode()).isEqualTo(200);
            assertThat(palisade.server().apiBaseUrl()).isEqualTo("https://127.0.0.1:" + port);

            // one keep-alive HTTPS connection outlives the API's request-head deadline while it is idle
            try (SSLSocket socket = (SSLSocket) TestingTls.trusting(ca).getSocketFactory().createSocket("127.0.0.1", port)) {
                socket.setSoTimeout(5000);
                List<String> statuses = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    statuses.add(getHealth(socket));
                    Thread.sleep(i == 0 ? 12_000 : 1_500);
                }
                assertThat(statuses).allMatch(status -> status.startsWith("HTTP/1.1 200"));
            }

            // a client that does not trust the CA fails the handshake
            HttpClient plainTrust = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            assertThatThrownBy(() -> plainTrust.send(HttpRequest.newBuilder(
                    URI.create("https://127.0.0.1:" + port + "/v1/health")).build(),
                    HttpResponse.BodyHandlers.ofString())).isInstanceOf(SSLHandshakeException.class);
            // plain HTTP gets no API answer
            assertThatThrownBy(() -> {
                HttpResponse<String> plain = plainTrust.send(HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + port + "/v1/health")).timeout(Duration.ofSeconds(10)).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (plain.statusCode() != 200) {
                    throw new IOException("HTTP " + plain.statusCode());
                }
            }).isInstanceOf(IOException.class);
        }
    }

    /** GET /v1/health on an open connection: the status line, the body read past. */
    private static String getHealth(SSLSocket socket) throws IOException {
        OutputStream out = socket.getOutputStream();
        out.write("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        InputStream in = socket.getInputStream();
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) {
                return "EOF after " + head.length() + " bytes";
            }
            head.append((char) c);
        }
        java.util.regex.Matcher length = java.util.regex.Pattern.compile("(?i)Content-Length: (\\d+)").matcher(head);
        if (length.find()) {
            in.readNBytes(Integer.parseInt(length.group(1)));
        }
        return head.substring(0, head.indexOf("\r\n"));
    }
}
