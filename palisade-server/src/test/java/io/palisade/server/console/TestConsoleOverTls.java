package io.palisade.server.console;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.server.TestingPalisade;
import io.palisade.testing.TestingTls;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * With the API on TLS the console works over HTTPS: its loopback calls trust exactly the API's certificate, the session
 * cookie is {@code Secure}, and the CSRF origin check accepts the page's own {@code https} origin.
 */
class TestConsoleOverTls {
    @Test
    void theConsoleWorksOverHttpsWithASecureCookie() throws Exception {
        try (TestingPalisade palisade = new TestingPalisade(Map.of("api.tls.enabled", "true"))) {
            String api = "https://127.0.0.1:" + palisade.server().apiPort();
            ConsoleHttp console = ConsoleHttp.signIn(api, palisade.adminKey(),
                    TestingTls.trusting(palisade.dataDir().resolve("tls/ca.crt")));
            String cookie = console.lastSignIn().headers().entrySet().stream()
                    .filter(e -> e.getKey().equalsIgnoreCase("set-cookie")).flatMap(e -> e.getValue().stream())
                    .filter(c -> c.startsWith(ConsoleSessions.COOKIE + "=")).findFirst().orElseThrow();
            assertThat(cookie).contains("Secure", "HttpOnly", "SameSite=Strict");
            assertThat(console.page("/console/host").status()).isEqualTo(200);
            ConsoleHttp.Response created = console.post("/console/databases", Map.of("label", "over-tls",
                    "isolation", "process"));
            assertThat(created.status()).as(created.body()).isEqualTo(200);
            String location = created.header("HX-Redirect");
            assertThat(location).startsWith("/console/databases/db-");
            assertThat(console.page(location).body()).contains("over-tls");
            String id = location.substring(location.lastIndexOf('/') + 1);
            ConsoleHttp.Response deleted = console.post(location + "/delete", Map.of("confirm", id));
            assertThat(deleted.status()).as(deleted.body()).isEqualTo(200);
            assertThat(console.page(location).status()).isEqualTo(404);
        }
    }
}
