package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
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
    void cpuTimeOfAProcessGrowsWithItsWorkAndIsUnknownForNoProcess() {
        long pid = ProcessHandle.current().pid();
        long before = QemuProcesses.cpuNanos(pid);
        assertThat(before).isPositive();
        // 30 ms of this thread's own CPU time, however long a busy host takes to give it
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long end = threads.getCurrentThreadCpuTime() + 30_000_000;
        long spin = 0;
        while (threads.getCurrentThreadCpuTime() < end) {
            spin++;
        }
        assertThat(spin).isPositive();
        assertThat(QemuProcesses.cpuNanos(pid) - before).isGreaterThanOrEqualTo(30_000_000);
        assertThat(QemuProcesses.cpuNanos(Integer.MAX_VALUE)).isEqualTo(-1);
    }
}
