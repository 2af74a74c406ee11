package io.palisade.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class ProcessesTest {
    @Test
    void builderPassesOnlyTheAllowListAndACLocale() {
        // set by this module's surefire configuration: a secret in the JVM's environment
        assertThat(System.getenv("PALISADE_TEST_SECRET")).isEqualTo("not-for-children");

        var environment = Processes.builder(List.of("true")).environment();

        assertThat(environment.keySet())
                .allMatch(key -> Processes.INHERITED_ENVIRONMENT.contains(key) || key.equals("LANG")
                        || key.equals("LC_ALL"));
        assertThat(environment).containsEntry("LC_ALL", "C").containsEntry("LANG", "C").containsKey("PATH");
    }

    @Test
    void childProcessesDoNotSeeTheJvmsSecrets() {
        Processes.Result result = Processes.run(List.of("env"), Duration.ofSeconds(10), null);

        assertThat(result.ok()).isTrue();
        assertThat(result.output()).doesNotContain("PALISADE_").doesNotContain("not-for-children").contains("PATH=");
    }
}
