package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The CLI against a real server: output, one-line errors, exit codes. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestCli {
    private TestingPalisade palisade;

    @BeforeAll
    void start() {
        palisade = new TestingPalisade();
    }

    @AfterAll
    void stop() {
        palisade.close();
    }

    private CliRun run(String... args) {
        List<String> all = new ArrayList<>();
        all.add("db");
        all.add("--api-url=" + palisade.apiUrl());
        all.add("--api-key=" + palisade.adminKey());
        all.addAll(List.of(args));
        return CliRun.of(all.toArray(String[]::new));
    }

    @Test
    void createListGetDelete() {
        CliRun created = run("create", "--label", "cli-tenant");
        assertThat(created.exitCode()).as(created.err()).isZero();
        assertThat(created.out()).contains("connection_url: postgres://");
        String id = created.out().lines().filter(l -> l.startsWith("id:")).findFirst().orElseThrow().substring(3).strip();

        CliRun list = run("list");
        assertThat(list.exitCode()).isZero();
        assertThat(list.out()).contains(id).contains("cli-tenant").contains("running");

        CliRun get = run("get", id);
        assertThat(get.exitCode()).isZero();
        assertThat(get.out()).contains("\"id\" : \"" + id + "\"").doesNotContain("password\" :");

        CliRun psql = run("psql", id, "-qAtc", "select 40 + 2");
        assertThat(psql.exitCode()).isZero();

        CliRun deleted = run("delete", id);
        assertThat(deleted.exitCode()).isZero();
        assertThat(deleted.out()).contains("deleted " + id);
    }

    @Test
    void backupsRestoreAndFork() {
        CliRun created = run("create", "--label", "cli-backups", "--isolation", "process");
        assertThat(created.exitCode()).as(created.err()).isZero();
        String id = created.out().lines().filter(l -> l.startsWith("id:")).findFirst().orElseThrow().substring(3).strip();
        BackupChecks.awaitFirstBackup(palisade, id);

        CliRun backup = run("backup", id);
        assertThat(backup.exitCode()).as(backup.err()).isZero();
        assertThat(backup.out()).contains("\"state\" : \"complete\"");
        CliRun backups = run("backups", id);
        assertThat(backups.exitCode()).isZero();
        assertThat(backups.out()).contains("restorable: ").contains("archive:    healthy").contains("complete");

        CliRun fork = run("fork", id, "--label", "cli-fork");
        assertThat(fork.exitCode()).as(fork.err()).isZero();
        assertThat(fork.out()).contains("status:         running").contains("connection_url: postgres://");

        CliRun restored = run("restore", id, "--as-new", "cli-restored");
        assertThat(restored.exitCode()).as(restored.err()).isZero();
        assertThat(restored.out()).contains("status:         running");

        CliRun badTime = run("restore", id, "--time", "last tuesday");
        assertThat(badTime.exitCode()).isEqualTo(2);
        assertThat(badTime.err().strip()).startsWith("palisade: target_time 'last tuesday' is not an RFC 3339 time");
        assertThat(badTime.err().strip().lines().count()).isEqualTo(1);
    }

    @Test
    void moveToAnotherRungAndBack() {
        CliRun created = run("create", "--label", "cli-move", "--isolation", "process");
        assertThat(created.exitCode()).as(created.err()).isZero();
        String id = created.out().lines().filter(l -> l.startsWith("id:")).findFirst().orElseThrow().substring(3).strip();

        CliRun down = run("move", id, "--to", "schema");
        assertThat(down.exitCode()).as(down.err()).isZero();
        assertThat(down.out()).contains(": done (cutover ").contains("runs on schema");
        assertThat(run("psql", id, "-qAtc", "select 40 + 2").exitCode()).isZero();

        CliRun same = run("move", id, "--to", "schema");
        assertThat(same.exitCode()).isEqualTo(5);
        assertThat(same.err().strip()).startsWith("palisade: database " + id + " already runs on the schema rung");

        CliRun nowhere = run("move", id);
        assertThat(nowhere.exitCode()).isEqualTo(2);
        assertThat(nowhere.err().strip()).isEqualTo("palisade: say where to: --to vm|process|database|schema (or"
                + " --cancel)");
        assertThat(run("delete", id).exitCode()).isZero();
    }

    @Test
    void errorsAreOneReadableLineWithExitCodes() {
        CliRun missing = run("get", "db-nothere1");
        assertThat(missing.exitCode()).isEqualTo(4);
        assertThat(missing.err().strip()).isEqualTo("palisade: database 'db-nothere1' not found");

        CliRun invalid = run("create", "--label", "bad label!");
        assertThat(invalid.exitCode()).isEqualTo(2);
        assertThat(invalid.err().strip()).startsWith("palisade: label 'bad label!' may contain only").doesNotContain("\n");

        CliRun badId = run("delete", "NOT-AN-ID");
        assertThat(badId.exitCode()).isEqualTo(2);
        assertThat(badId.err()).contains("is not a database id");

        CliRun unauthenticated = CliRun.of("db", "--api-url=" + palisade.apiUrl(), "--api-key=pk_wrong_wrong_wrong", "list");
        assertThat(unauthenticated.exitCode()).isEqualTo(3);
        assertThat(unauthenticated.err().strip()).isEqualTo("palisade: the API key is not valid");

        CliRun unreachable = CliRun.of("db", "--api-url=http://127.0.0.1:1", "--api-key=x", "list");
        assertThat(unreachable.exitCode()).isEqualTo(6);
        assertThat(unreachable.err()).contains("cannot reach palisade at http://127.0.0.1:1");

        CliRun usage = CliRun.of("db", "frobnicate");
        assertThat(usage.exitCode()).isEqualTo(2);
        assertThat(usage.err()).startsWith("palisade: ");
    }
}
