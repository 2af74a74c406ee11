package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.spi.Rung;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** The README's rungs table is the one {@link Rung} generates (the health endpoint serves the same facts). */
class TestRungsTable {
    @Test
    void readmeShowsTheRungsTableOfTheCode() throws Exception {
        String readme = Files.readString(TestingDirectories.repoDir().resolve("README.md"));
        assertThat(readme).as("README.md must carry Rung.markdownTable() verbatim; regenerate it from the code")
                .contains(Rung.markdownTable());
        for (Rung rung : Rung.values()) {
            assertThat(Rung.fromWire(rung.wireName())).isEqualTo(rung);
            assertThat(rung.isolation().keySet()).containsExactly("cpu", "ram", "io", "kernel", "page_cache", "wal",
                    "crash_blast_radius", "credential_leak");
        }
    }
}
