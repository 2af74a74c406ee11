package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.store.SecretBox;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code palisade serve} started with {@code PALISADE_BOOTSTRAP_API_KEY} in its environment: none of its child
 * processes (the store's and a process-rung tenant's postmaster and their backends) can read it from
 * {@code /proc/<pid>/environ}.
 */
class TestChildEnvironment {
    @Test
    void noChildOfPalisadeServeInheritsTheBootstrapKey() throws Exception {
        Path work = TestingDirectories.newWorkDir("env");
        String key = "pk_env_" + SecretBox.randomSecret(24);
        try (TestingPalisadeProcess serve = new TestingPalisadeProcess(work.resolve("data"), key)) {
            HttpResponse<String> created = send(key, HttpRequest.newBuilder(URI.create(serve.url()
                    + "/v1/databases")).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"isolation\":\"process\",\"label\":\"env\"}")));
            assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
            assertThat(environ(serve.handle().pid())).contains("PALISADE_BOOTSTRAP_API_KEY=" + key);

            List<ProcessHandle> postmasters = serve.handle().descendants()
                    .filter(p -> p.info().command().orElse("").endsWith("/postgres"))
                    .toList();
            assertThat(postmasters).as("the store's and the tenant's postmasters").hasSizeGreaterThanOrEqualTo(2);
            for (ProcessHandle child : serve.handle().descendants().toList()) {
                String environ = environ(child.pid());
                assertThat(environ).as("environment of %s (%s)", child.pid(), child.info().command().orElse("?"))
                        .doesNotContain("PALISADE_").doesNotContain(key);
            }
            // deleted, not left behind: its OS user would outlive the data directory
            String id = new ObjectMapper().readTree(created.body()).get("id").asText();
            HttpResponse<String> deleted = send(key,
                    HttpRequest.newBuilder(URI.create(serve.url() + "/v1/databases/" + id)).DELETE());
            assertThat(deleted.statusCode()).as(deleted.body()).isEqualTo(204);
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
    }

    private static String environ(long pid) {
        try {
            return new String(Files.readAllBytes(Path.of("/proc", Long.toString(pid), "environ")),
                    StandardCharsets.UTF_8).replace('\0', '\n');
        } catch (IOException e) {
            return ""; // gone meanwhile
        }
    }

    /** Sends a request to the API with the bootstrap key (3 min: a create includes initdb). */
    private static HttpResponse<String> send(String key, HttpRequest.Builder request)
            throws IOException, InterruptedException {
        return HttpClient.newHttpClient().send(request.header("Authorization", "Bearer " + key)
                .timeout(Duration.ofMinutes(3)).build(), HttpResponse.BodyHandlers.ofString());
    }
}
