package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.cli.Cli;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import picocli.CommandLine;

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

    record Run(int exitCode, String out, String err) {}

    private Run run(String... args) {
        List<String> all = new ArrayList<>();
        all.add("db");
        all.add("--api-url=" + palisade.apiUrl());
        all.add("--api-key=" + palisade.adminKey());
        all.addAll(List.of(args));
        return runRaw(all.toArray(String[]::new));
    }

    private static Run runRaw(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine commandLine = Cli.configure(new CommandLine(new Main()));
        commandLine.setOut(new PrintWriter(out, true));
        commandLine.setErr(new PrintWriter(err, true));
        int code = commandLine.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    @Test
    void createListGetDelete() {
        Run created = run("create", "--label", "cli-tenant");
        assertThat(created.exitCode()).as(created.err()).isZero();
        assertThat(created.out()).contains("connection_url: postgres://");
        String id = created.out().lines().filter(l -> l.startsWith("id:")).findFirst().orElseThrow().substring(3).strip();

        Run list = run("list");
        assertThat(list.exitCode()).isZero();
        assertThat(list.out()).contains(id).contains("cli-tenant").contains("running");

        Run get = run("get", id);
        assertThat(get.exitCode()).isZero();
        assertThat(get.out()).contains("\"id\" : \"" + id + "\"").doesNotContain("password\" :");

        Run psql = run("psql", id, "-qAtc", "select 40 + 2");
        assertThat(psql.exitCode()).isZero();

        Run deleted = run("delete", id);
        assertThat(deleted.exitCode()).isZero();
        assertThat(deleted.out()).contains("deleted " + id);
    }

    @Test
    void errorsAreOneReadableLineWithExitCodes() {
        Run missing = run("get", "db-nothere1");
        assertThat(missing.exitCode()).isEqualTo(4);
        assertThat(missing.err().strip()).isEqualTo("palisade: database 'db-nothere1' not found");

        Run invalid = run("create", "--label", "bad label!");
        assertThat(invalid.exitCode()).isEqualTo(2);
        assertThat(invalid.err().strip()).startsWith("palisade: label 'bad label!' may contain only").doesNotContain("\n");

        Run badId = run("delete", "NOT-AN-ID");
        assertThat(badId.exitCode()).isEqualTo(2);
        assertThat(badId.err()).contains("is not a database id");

        Run unauthenticated = runRaw("db", "--api-url=" + palisade.apiUrl(), "--api-key=pk_wrong_wrong_wrong", "list");
        assertThat(unauthenticated.exitCode()).isEqualTo(3);
        assertThat(unauthenticated.err().strip()).isEqualTo("palisade: the API key is not valid");

        Run unreachable = runRaw("db", "--api-url=http://127.0.0.1:1", "--api-key=x", "list");
        assertThat(unreachable.exitCode()).isEqualTo(6);
        assertThat(unreachable.err()).contains("cannot reach palisade at http://127.0.0.1:1");

        Run usage = runRaw("db", "frobnicate");
        assertThat(usage.exitCode()).isEqualTo(2);
        assertThat(usage.err()).startsWith("palisade: ");
    }
}
