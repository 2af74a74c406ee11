package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The attack of the security review: a process-rung tenant that runs code as the service user replaces its
 * {@code postgres.log} with a link to palisade's master key; {@code GET /logs} (served by root) must not return it.
 */
class TestTenantLinks {
    @Test
    void aLogLinkedToTheMasterKeyNeverReturnsTheKey() throws Exception {
        try (TestingPalisade palisade = new TestingPalisade(Map.of())) {
            String key = palisade.newAccount("links");
            TestingPalisade.Response created = palisade.request("POST", "/v1/databases",
                    "{\"isolation\":\"process\",\"label\":\"links\"}", key);
            assertThat(created.status()).as(created.body()).isEqualTo(201);
            String id = created.json().get("id").asText();
            TestingPalisade.Response before = palisade.request("GET", "/v1/databases/" + id + "/logs", null, key);
            assertThat(before.status()).as(before.body()).isEqualTo(200);

            Path masterKey = palisade.dataDir().resolve("secrets/master.key");
            String secret = Files.readString(masterKey).strip();
            Path log = palisade.dataDir().resolve("instances/process").resolve(id).resolve("postgres.log");
            assertThat(log).exists();
            Files.delete(log);
            Files.createSymbolicLink(log, masterKey);

            TestingPalisade.Response after = palisade.request("GET", "/v1/databases/" + id + "/logs", null, key);
            assertThat(after.body()).doesNotContain(secret);
            assertThat(after.status()).as(after.body()).isNotEqualTo(200);
            assertThat(after.contentType()).startsWith("application/problem+json");
            assertThat(Files.readString(masterKey).strip()).isEqualTo(secret);
        }
    }
}
