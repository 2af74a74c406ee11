package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Follows a guest's serial log and notes when each boot marker ({@code PALISADE-BOOT <phase>}) first appears, in
 * milliseconds since QEMU was started. Not thread-safe: one boot watcher polls it.
 */
final class SerialConsole {
    static final String MARKER = "PALISADE-BOOT ";
    static final List<String> PHASES = List.of("initramfs", "init", "postgres-started", "ready");

    private final Path file;
    private final long startNanos;
    private final StringBuilder text = new StringBuilder();
    private final Map<String, Long> phases = new LinkedHashMap<>();
    private long offset;

    SerialConsole(Path file, long startNanos) {
        this.file = requireNonNull(file, "file is null");
        this.startNanos = startNanos;
    }

    /** Reads what the guest printed since the last poll and records new markers. */
    void poll() {
        if (!Files.exists(file)) {
            return;
        }
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "r")) {
            long length = raf.length();
            if (length <= offset) {
                return;
            }
            byte[] bytes = new byte[(int) Math.min(length - offset, 1 << 20)];
            raf.seek(offset);
            raf.readFully(bytes);
            offset += bytes.length;
            text.append(new String(bytes, StandardCharsets.UTF_8));
        } catch (IOException e) {
            return;
        }
        long now = (System.nanoTime() - startNanos) / 1_000_000;
        int from = 0;
        while (true) {
            int at = text.indexOf(MARKER, from);
            if (at < 0) {
                break;
            }
            int end = at + MARKER.length();
            while (end < text.length() && !Character.isWhitespace(text.charAt(end))) {
                end++;
            }
            if (end == text.length()) {
                break; // the marker may not be complete yet
            }
            phases.putIfAbsent(text.substring(at + MARKER.length(), end), now);
            from = end;
        }
    }

    boolean seen(String phase) {
        return phases.containsKey(phase);
    }

    /** The milliseconds since QEMU start at which {@code phase} appeared; only after {@link #seen} said it did. */
    long at(String phase) {
        Long at = phases.get(phase);
        if (at == null) {
            throw new IllegalStateException("marker " + phase + " not seen yet");
        }
        return at;
    }

    boolean seenAny() {
        return offset > 0;
    }

    /** The milliseconds since QEMU start at which each phase seen so far appeared. */
    Map<String, Long> phases() {
        return Map.copyOf(phases);
    }

    /** The last lines the guest printed, for error messages. */
    String tail(int lines) {
        return io.palisade.host.Processes.tail(text.toString().replace("\r", ""), lines);
    }
}
