package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import io.palisade.spi.Rung;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.SecretBox;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code vm.enabled=false}: the host runs no vm rung (a create asking for one gets a 400 naming the rungs it has), and a
 * host that has vm databases refuses to start that way instead of leaving them unreachable.
 */
class TestVmRungDisabled {
    private static final Map<String, String> NO_VM = Map.of("vm.enabled", "false");

    private final Path dataDir = TestingDirectories.newWorkDir("vm-disabled").resolve("data");
    private final String adminKey = "pk_test_" + SecretBox.randomSecret(24);

    @AfterEach
    void cleanUp() {
        TestingDirectories.deleteRecursively(dataDir.getParent());
    }

    @Test
    void aHostWithoutTheVmRungAnswersAVmCreateWithTheRungsItRuns() {
        try (TestingPalisade palisade = TestingPalisade.onDataDir(dataDir, adminKey, NO_VM)) {
            assertThat(palisade.server().service().probes()).doesNotContainKey(Rung.VM).containsKey(Rung.PROCESS);

            TestingPalisade.Response create = palisade.post("/v1/databases", "{\"isolation\":\"vm\"}");

            assertThat(create.status()).as(create.body()).isEqualTo(400);
            assertThat(create.contentType()).startsWith("application/problem+json");
            assertThat(create.json().get("detail").asText()).contains("'vm' is not run by this host").contains("process");
        }
    }

    @Test
    void aHostWithVmDatabasesRefusesToStartWithoutTheVmRung() {
        String vmDatabase;
        try (TestingPalisade palisade = TestingPalisade.onDataDir(dataDir, adminKey, NO_VM)) {
            // a vm database as an earlier start with the vm rung recorded it (creating one boots a guest under TCG)
            String id = palisade.post("/v1/databases", "{\"isolation\":\"process\"}").json().get("id").asText();
            var store = palisade.server().store();
            DatabaseRecord process = store.find(id).orElseThrow();
            vmDatabase = id + "-vm";
            store.insert(new DatabaseRecord(vmDatabase, process.accountId(), "vm", Rung.VM, process.version(),
                    process.plan(), true, null, null, process.suspendAfterSeconds(), process.host(), process.state(),
                    null, process.username(), process.database(), process.passwordEnc(), process.brokerTokenHash(),
                    process.brokerTokenEnc(), Optional.empty(), Optional.empty(), process.labels(),
                    process.createdAt(), process.updatedAt(), process.lastActiveAt()));
            // the process database itself goes (its OS user and cgroup with it); the vm record stays
            assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
        }

        assertThatThrownBy(() -> TestingPalisade.onDataDir(dataDir, adminKey, NO_VM))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("vm.enabled=false").hasMessageContaining(vmDatabase);
    }
}
