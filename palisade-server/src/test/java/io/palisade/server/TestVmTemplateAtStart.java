package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * {@code palisade serve} prepares the default plan's vm template snapshot in the background at start
 * ({@code vm.prepare-template}): {@code /v1/health} shows it building, then ready; a create that arrives meanwhile
 * waits for it, and afterwards there is exactly that one template on disk. A second server with a fresh data directory
 * and the same {@code vm.templates-dir} (by default beside the guest image: every server on the host) finds it ready
 * and clones it from its first create, without building another.
 */
class TestVmTemplateAtStart {
    @Test
    void templateIsPreparedAtStartAndShownInHealthAndSharedWithTheNextServer() throws Exception {
        Path templates = TestingDirectories.newWorkDir("vm-templates");
        Map<String, String> settings = Map.of("vm.prepare-template", "true", "vm.templates-dir", templates.toString());
        try {
            String key = templateBuiltAtStart(settings, templates);
            templateSharedWithTheNextServer(settings, templates, key);
        } finally {
            TestingDirectories.deleteRecursively(templates);
        }
    }

    private static String templateBuiltAtStart(Map<String, String> settings, Path templates) throws Exception {
        String key;
        try (TestingPalisade palisade = TestingPalisade.requiring("vm", settings)) {
            await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(100)).until(
                    () -> Set.of("building", "ready").contains(vmDetails(palisade).path("template_state").asText()));
            JsonNode early = vmDetails(palisade);
            System.out.println("vm rung in /v1/health shortly after start: " + early);
            key = early.path("template_key").asText();
            assertThat(key).contains("-pg16-c1-m256-");

            TestingPalisade.Response created =
                    palisade.post("/v1/databases", "{\"label\":\"first-vm\",\"isolation\":\"vm\"}");
            assertThat(created.status()).as(created.body()).isEqualTo(201);
            JsonNode after = vmDetails(palisade);
            System.out.println("vm rung in /v1/health after the first create: " + after);
            assertThat(after.path("template_state").asText()).isEqualTo("ready");
            assertThat(after.path("template_key").asText()).isEqualTo(key);
            assertThat(completeTemplates(templates)).containsExactly(key);

            String id = created.json().get("id").asText();
            assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
        }
        return key;
    }

    private static void templateSharedWithTheNextServer(Map<String, String> settings, Path templates, String key)
            throws Exception {
        FileTime built = Files.getLastModifiedTime(templates.resolve(key).resolve("complete"));
        try (TestingPalisade next = TestingPalisade.requiring("vm", settings)) {
            await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(100)).until(
                    () -> !vmDetails(next).path("template_state").asText().equals("pending"));
            JsonNode details = vmDetails(next);
            System.out.println("vm rung in /v1/health of a second server with a fresh data directory: " + details);
            assertThat(details.path("template_state").asText()).isEqualTo("ready");
            assertThat(details.path("template_key").asText()).isEqualTo(key);

            TestingPalisade.Response created =
                    next.post("/v1/databases", "{\"label\":\"second-server\",\"isolation\":\"vm\"}");
            assertThat(created.status()).as(created.body()).isEqualTo(201);
            assertThat(completeTemplates(templates)).containsExactly(key);
            assertThat(Files.getLastModifiedTime(templates.resolve(key).resolve("complete")))
                    .as("the template was not rebuilt").isEqualTo(built);
            assertThat(next.delete("/v1/databases/" + created.json().get("id").asText()).status())
                    .isEqualTo(204);
        }
    }

    /** The {@code details} of the vm row of {@code /v1/health}'s rungs. */
    static JsonNode vmDetails(TestingPalisade palisade) {
        for (JsonNode rung : palisade.get("/v1/health").json().path("rungs")) {
            if ("vm".equals(rung.path("name").asText())) {
                return rung.path("details");
            }
        }
        throw new AssertionError("no vm rung in /v1/health");
    }

    /** The keys of the complete templates in a templates directory. */
    static List<String> completeTemplates(Path dir) throws Exception {
        try (Stream<Path> dirs = Files.list(dir)) {
            return dirs.filter(d -> Files.exists(d.resolve("complete"))).map(d -> d.getFileName().toString()).toList();
        }
    }
}
