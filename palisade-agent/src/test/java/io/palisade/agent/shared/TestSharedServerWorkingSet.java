package io.palisade.agent.shared;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Cgroups;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A shared server is placed on by its cgroup's working set, not by everything charged to it: the file cache of the
 * databases it wrote is charged too, and the kernel drops the inactive part of it before the cap bites.
 */
class TestSharedServerWorkingSet {
    @Test
    void workingSetLeavesOutInactiveFileCacheOnCgroupV1AndV2() throws Exception {
        Path dir = TestingDirectories.newWorkDir("working-set");
        try {
            Path v1 = Files.createDirectories(dir.resolve("memory"));
            Files.writeString(v1.resolve("memory.usage_in_bytes"), "1900000000\n");
            Files.writeString(v1.resolve("memory.stat"),
                    "cache 1500000000\nrss 300000000\ninactive_file 5\ntotal_inactive_file 1400000000\n");
            Cgroups.Group groupV1 = new Cgroups.Group("s", List.of(Files.createDirectories(dir.resolve("cpu")), v1),
                    Cgroups.Mode.V1);
            assertThat(groupV1.memoryBytes()).isEqualTo(1_900_000_000L);
            assertThat(groupV1.workingSetBytes()).isEqualTo(500_000_000L);

            Path v2 = Files.createDirectories(dir.resolve("unified"));
            Files.writeString(v2.resolve("memory.current"), "1900000000\n");
            Files.writeString(v2.resolve("memory.stat"), "anon 300000000\nfile 1500000000\nactive_file 100000000\n"
                    + "inactive_file 1400000000\n");
            Cgroups.Group groupV2 = new Cgroups.Group("s", List.of(v2), Cgroups.Mode.V2);
            assertThat(groupV2.workingSetBytes()).isEqualTo(500_000_000L);

            Files.delete(v2.resolve("memory.stat"));
            assertThat(groupV2.workingSetBytes()).as("without memory.stat: everything charged")
                    .isEqualTo(1_900_000_000L);
        } finally {
            TestingDirectories.deleteRecursively(dir);
        }
    }
}
