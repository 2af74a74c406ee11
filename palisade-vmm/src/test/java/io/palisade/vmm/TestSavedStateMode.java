package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a suspend writes beside its state ({@link SavedStateMode}), and the QEMU CPU time its wait for a quiet guest
 * reads ({@link QemuProcesses#cpuNanos}).
 */
class TestSavedStateMode {
    @TempDir
    Path dir;

    @Test
    void everyCombinationRoundTripsAndOlderFilesReadAsNotAnswered() throws Exception {
        Path file = dir.resolve("suspend.mode");
        for (boolean ramInState : new boolean[] {false, true}) {
            for (boolean answered : new boolean[] {false, true}) {
                SavedStateMode mode = new SavedStateMode(ramInState, answered);
                mode.write(file);
                assertThat(SavedStateMode.read(file)).isEqualTo(mode);
                assertThat(mode.ignoreShared()).isEqualTo(!ramInState);
            }
        }
        // the files suspends wrote before PostgreSQL's answer was recorded, and no file at all
        Files.writeString(file, "full\n");
        assertThat(SavedStateMode.read(file)).isEqualTo(new SavedStateMode(true, false));
        Files.writeString(file, "ignore-shared");
        assertThat(SavedStateMode.read(file)).isEqualTo(new SavedStateMode(false, false));
        assertThat(SavedStateMode.read(dir.resolve("absent"))).isEqualTo(new SavedStateMode(false, false));
    }

    @Test
    void cpuTimeOfAProcessGrowsWithItsWorkAndIsUnknownForNoProcess() throws Exception {
        // a single-threaded busy process (no thread that ends takes its time out of the sum)
        Process busy = new ProcessBuilder("sh", "-c", "while :; do :; done").start();
        try {
            long before = QemuProcesses.cpuNanos(busy.pid());
            assertThat(before).isNotNegative();
            await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(10))
                    .until(() -> QemuProcesses.cpuNanos(busy.pid()) - before >= 50_000_000);
        } finally {
            busy.destroyForcibly().waitFor();
        }
        assertThat(QemuProcesses.cpuNanos(Integer.MAX_VALUE)).isEqualTo(-1);
    }
}
