package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * {@code palisade serve} prepares the default plan's vm template snapshot in the background at start
 * ({@code vm.prepare-template}): {@code /v1/health} shows it building, then ready; a create that arrives meanwhile
 * waits for it, and afterwards there is exactly that one template on disk.
 */
class TestVmTemplateAtStart {
    @Test
    void templateIsPreparedAtStartAndShownInHealth() throws Exception {
        try (TestingPalisade palisade = TestingPalisade.requiring("vm", Map.of("vm.prepare-template", "true"))) {
            await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(100)).until(
                    () -> Set.of("building", "ready").contains(vmDetails(palisade).path("template_state").asText()));
            JsonNode early = vmDetails(palisade);
            System.out.println("vm rung in /v1/health shortly after start: " + early);
            String key = early.path("template_key").asText();
            assertThat(key).contains("-pg16-c1-m256-");

            TestingPalisade.Response created =
                    palisade.post("/v1/databases", "{\"label\":\"first-vm\",\"isolation\":\"vm\"}");
            assertThat(created.status()).as(created.body()).isEqualTo(201);
            JsonNode after = vmDetails(palisade);
            System.out.println("vm rung in /v1/health after the first create: " + after);
            assertThat(after.path("template_state").asText()).isEqualTo("ready");
            assertThat(after.path("template_key").asText()).isEqualTo(key);
            assertThat(completeTemplates(palisade.dataDir().resolve("vm/.templates"))).containsExactly(key);

            String id = created.json().get("id").asText();
            assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
        }
    }

    private static JsonNode vmDetails(TestingPalisade palisade) {
        for (JsonNode rung : palisade.get("/v1/health").json().path("rungs")) {
            if ("vm".equals(rung.path("name").asText())) {
                return rung.path("details");
            }
        }
        throw new AssertionError("no vm rung in /v1/health");
    }

    private static List<String> completeTemplates(Path dir) throws Exception {
        try (Stream<Path> dirs = Files.list(dir)) {
            return dirs.filter(d -> Files.exists(d.resolve("complete"))).map(d -> d.getFileName().toString()).toList();
        }
    }
}
