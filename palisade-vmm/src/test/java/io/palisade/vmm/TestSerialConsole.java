package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestSerialConsole {
    @TempDir
    Path dir;

    @Test
    void recordsEachMarkerOnceAndWaitsForWholeMarkers() throws IOException {
        Path log = dir.resolve("serial.log");
        SerialConsole console = new SerialConsole(log, System.nanoTime());
        console.poll();
        assertThat(console.seenAny()).isFalse();
        Files.writeString(log, "[    0.1] noise\r\nPALISADE-BOOT initramfs\r\nPALISADE-BOOT in");
        console.poll();
        assertThat(console.seen("initramfs")).isTrue();
        assertThat(console.seen("in")).isFalse();
        assertThat(console.seen("init")).isFalse();
        assertThatThrownBy(() -> console.at("init")).isInstanceOf(IllegalStateException.class);
        Files.writeString(log, "it\nPALISADE-BOOT postgres-started\nPALISADE-BOOT ready\nPALISADE-BOOT initramfs\n",
                StandardOpenOption.APPEND);
        console.poll();
        assertThat(console.phases()).containsOnlyKeys("initramfs", "init", "postgres-started", "ready");
        assertThat(console.phases().get("initramfs")).isLessThanOrEqualTo(console.phases().get("ready"));
        assertThat(console.at("postgres-started")).isEqualTo(console.phases().get("postgres-started"));
        assertThat(console.tail(1)).isEqualTo("PALISADE-BOOT initramfs");
    }
}
