package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.cli.Cli;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The documentation generated from {@link ConfigKeys}: the README table, {@code --help-config}, docs/broker.md. */
class TestConfigDocs {
    private static final String REGENERATE = "palisade.regenerate-config-docs";

    @Test
    void readmeTableIsTheGeneratedOne() throws IOException {
        Path readme = TestingDirectories.repoDir().resolve("README.md");
        String text = Files.readString(readme, StandardCharsets.UTF_8);
        if (Boolean.getBoolean(REGENERATE)) {
            Files.writeString(readme, ConfigDocs.withTable(text), StandardCharsets.UTF_8);
            text = Files.readString(readme, StandardCharsets.UTF_8);
        }
        assertThat(ConfigDocs.tableIn(text))
                .as("README.md's configuration table differs from the keys declared in ConfigKeys; regenerate it with"
                        + " `mvn -B -ntp -o verify -pl palisade-server -am -Dtest=TestConfigDocs"
                        + " -Dsurefire.failIfNoSpecifiedTests=false -D" + REGENERATE + "=true`"
                        + " (or run io.palisade.server.ConfigDocs with README.md as argument) and commit the result")
                .isEqualTo(ConfigDocs.markdownTable());
        for (Setting<?> key : ConfigKeys.ALL) {
            assertThat(ConfigDocs.markdownTable()).contains("| `" + key.name() + "` |");
        }
    }

    @Test
    void brokerLimitsInTheDocsNameTheirKeys() throws IOException {
        String docs = Files.readString(TestingDirectories.repoDir().resolve("docs/broker.md"), StandardCharsets.UTF_8);
        ConfigKeys.ALL.stream().filter(key -> key.name().startsWith("broker.")).forEach(key ->
                assertThat(docs).as("docs/broker.md names " + key.name()).contains("`" + key.name() + "`"));
    }

    @Test
    void helpConfigListsEveryKey() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine commandLine = Cli.configure(new CommandLine(new Main()));
        commandLine.setOut(new PrintWriter(out, true));
        commandLine.setErr(new PrintWriter(err, true));
        int code = commandLine.execute("serve", "--help-config");
        assertThat(code).as(err.toString()).isZero();
        String help = out.toString();
        assertThat(help).isEqualTo(ConfigDocs.helpText());
        for (Setting<?> key : ConfigKeys.ALL) {
            assertThat(help).contains("\n" + key.name() + "  (" + key.type().name() + (key.secret() ? ", secret" : "")
                    + ")  default: " + key.defaultValue().orElse("unset"));
        }
        assertThat(help)
                .contains("\nbroker.max-rows  (int ≥ 1)  default: 10000\n    Rows kept per statement")
                .contains("\nbroker.max-request-bytes  (bytes 1KiB..1GiB)  default: 10MiB\n")
                .contains("\nstore.password  (string, secret)  default: unset\n")
                .contains("\nvm.suspend-after  (duration > 0 | never)  default: 300s\n");
        assertThat(help.lines()).allSatisfy(line -> assertThat(line.length()).isLessThanOrEqualTo(120));
    }

    @Test
    void serveFailsOnABadValueWithOneLine() {
        StringWriter err = new StringWriter();
        CommandLine commandLine = Cli.configure(new CommandLine(new Main()));
        commandLine.setOut(new PrintWriter(new StringWriter(), true));
        commandLine.setErr(new PrintWriter(err, true));
        int code = commandLine.execute("serve", "-c", "broker.max-rows=lots");
        assertThat(code).isEqualTo(2);
        assertThat(err.toString().strip()).isEqualTo("palisade: broker.max-rows must be an integer of at least 1, "
                + "got 'lots'");
    }
}
