package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.sql.Connection;
import java.sql.Statement;
import io.palisade.host.Processes;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Backups of a vm database (QEMU, TCG in CI) through the API: WAL streamed and a base backup taken over the guest link,
 * a fork that is a VM of its own with the source's schema and data, a restore up the ladder (process source → vm
 * database) reproducing the tenant schema corpus exactly, and vm data refused on the process rung.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestVmBackups {
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = TestingPalisade.requiring("vm", Map.of("backup.flush-interval", "200ms"));
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.close();
        }
    }

    @Test
    void forkAndCrossRungRestoreOfAVmDatabase() throws Exception {
        TestingPalisade.Response created = palisade.post("/v1/databases",
                "{\"label\":\"vm-backup-source\",\"isolation\":\"vm\",\"suspend_after_seconds\":\"never\"}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        String id = created.json().get("id").asText();
        String url = created.json().get("connection_url").asText();
        try (Connection c = PgUrls.connect(url); Statement s = c.createStatement()) {
            s.execute(BackupChecks.corpus());
            s.execute("create table vm_rows as select g as n from generate_series(1, 500) g");
        }
        String structure = BackupChecks.structure(url);
        BackupChecks.awaitFirstBackup(palisade, id);
        BackupChecks.awaitWindowCovering(palisade, id, Instant.now());
        JsonNode archive = palisade.get("/v1/databases/" + id + "/backups").json().get("archive");
        assertThat(archive.get("streaming").asBoolean()).isTrue();
        assertThat(archive.get("healthy").asBoolean()).as(archive.toString()).isTrue();

        TestingPalisade.Response fork = palisade.post("/v1/databases/" + id + "/fork", "{\"label\":\"vm-fork\"}");
        assertThat(fork.status()).as(fork.body()).isEqualTo(201);
        assertThat(fork.json().get("isolation").asText()).isEqualTo("vm");
        String forkUrl = fork.json().get("connection_url").asText();
        assertThat(BackupChecks.count(forkUrl, "vm_rows", "true")).isEqualTo(500);
        assertThat(BackupChecks.structure(forkUrl)).isEqualTo(structure);
        BackupChecks.execute(forkUrl, "insert into vm_rows values (-1)");
        assertThat(BackupChecks.count(url, "vm_rows", "n = -1")).isZero();

        // data that ran inside a guest never goes to the process rung (guest root could have changed anything in it)
        TestingPalisade.Response refused = palisade.post("/v1/databases",
                "{\"label\":\"vm-to-process\",\"isolation\":\"process\",\"restore\":{\"from\":\"" + id
                        + "\",\"latest\":true}}");
        assertThat(refused.status()).as(refused.body()).isEqualTo(409);
        assertThat(refused.json().get("detail").asText()).contains("ran inside a vm guest").contains("vm rung");
        TestingPalisade.Response forkRefused = palisade.post("/v1/databases/" + id + "/fork",
                "{\"isolation\":\"process\"}");
        assertThat(forkRefused.status()).isEqualTo(409);

        // the other way is a climb: a process database restored onto the vm rung, the corpus reproduced exactly
        TestingPalisade.Response source = palisade.post("/v1/databases",
                "{\"label\":\"process-source\",\"isolation\":\"process\"}");
        assertThat(source.status()).as(source.body()).isEqualTo(201);
        String processId = source.json().get("id").asText();
        String processUrl = source.json().get("connection_url").asText();
        try (Connection c = PgUrls.connect(processUrl); Statement s = c.createStatement()) {
            s.execute(BackupChecks.corpus());
            s.execute("create table vm_rows as select g as n from generate_series(1, 500) g");
        }
        String processStructure = BackupChecks.structure(processUrl);
        BackupChecks.awaitWindowCovering(palisade, processId, Instant.now());
        TestingPalisade.Response restored = palisade.post("/v1/databases",
                "{\"label\":\"process-to-vm\",\"isolation\":\"vm\",\"restore\":{\"from\":\"" + processId
                        + "\",\"latest\":true}}");
        assertThat(restored.status()).as(restored.body()).isEqualTo(201);
        assertThat(restored.json().get("isolation").asText()).isEqualTo("vm");
        String restoredUrl = restored.json().get("connection_url").asText();
        assertThat(BackupChecks.count(restoredUrl, "vm_rows", "true")).isEqualTo(500);
        assertThat(BackupChecks.structure(restoredUrl)).isEqualTo(processStructure);

        for (String db : new String[] {fork.json().get("id").asText(), restored.json().get("id").asText(), id,
                processId}) {
            assertThat(palisade.delete("/v1/databases/" + db).status()).isEqualTo(204);
        }
    }

    @Test
    void diskLossOfAVmDatabase() throws Exception {
        DiskLoss.Result result = DiskLoss.run(palisade,
                "{\"label\":\"vm-loss\",\"isolation\":\"vm\",\"suspend_after_seconds\":\"never\"}", "vm",
                Duration.ofSeconds(4), id -> {
                    // the loss: QEMU killed and the VM's volume and state gone, behind palisade's back
                    ProcessHandle.allProcesses()
                            .filter(p -> p.info().commandLine().orElse("").contains("-name pal-" + id))
                            .forEach(ProcessHandle::destroyForcibly);
                    Processes.run(List.of("rm", "-rf", palisade.dataDir().resolve("vm").resolve(id).toString()),
                            Duration.ofSeconds(30), null);
                });
        System.out.println(result.describe("vm, async"));
        assertThat(result.missingOld()).isZero();
        assertThat(result.olderThanOneSecond()).isGreaterThan(5);
        assertThat(palisade.delete("/v1/databases/" + result.sourceId()).status()).isEqualTo(204);
        assertThat(palisade.delete("/v1/databases/" + result.restoredId()).status()).isEqualTo(204);
    }
}
