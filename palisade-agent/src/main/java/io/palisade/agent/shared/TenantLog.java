package io.palisade.agent.shared;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;

/**
 * One tenant's lines of a shared server's JSON log: entries whose session user is the tenant's role, rendered like
 * PostgreSQL's text log. Since every entry is one JSON line, no tenant can make a line that passes for another's.
 * Reads only the last {@link #WINDOW} bytes of the log: a quiet tenant on a busy server may see fewer lines.
 */
final class TenantLog {
    static final int WINDOW = 8 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private TenantLog() {}

    /** The tenant's last {@code lines} lines from the parts of the log, oldest part first. */
    static List<String> tail(List<Path> parts, String role, int lines) {
        if (lines <= 0) {
            return List.of();
        }
        Deque<String> out = new ArrayDeque<>();
        for (Path part : parts) {
            collect(read(part), role, lines, out);
        }
        return List.copyOf(out);
    }

    /** The last {@link #WINDOW} bytes of a log part, from its first whole line; empty if it does not exist. */
    private static String read(Path jsonLog) {
        if (!Files.exists(jsonLog)) {
            return "";
        }
        try (RandomAccessFile file = new RandomAccessFile(jsonLog.toFile(), "r")) {
            long start = Math.max(0, file.length() - WINDOW);
            byte[] bytes = new byte[(int) (file.length() - start)];
            file.seek(start);
            file.readFully(bytes);
            String text = new String(bytes, StandardCharsets.UTF_8);
            if (start > 0) {
                int firstBreak = text.indexOf('\n');
                text = firstBreak < 0 ? "" : text.substring(firstBreak + 1);
            }
            return text;
        } catch (IOException e) {
            return "";
        }
    }

    private static void collect(String text, String role, int lines, Deque<String> out) {
        for (String line : text.split("\n")) {
            if (line.isBlank() || !line.contains(role)) {
                continue;
            }
            JsonNode entry;
            try {
                entry = JSON.readTree(line);
            } catch (IOException e) {
                continue;
            }
            if (!role.equals(entry.path("user").asText(null))) {
                continue;
            }
            String prefix = entry.path("timestamp").asText("") + " [" + entry.path("pid").asText("") + "] ";
            add(out, prefix + entry.path("error_severity").asText("LOG") + ":  " + entry.path("message").asText(""), lines);
            for (String field : List.of("detail", "hint", "statement")) {
                if (entry.hasNonNull(field)) {
                    add(out, prefix + field.toUpperCase(java.util.Locale.ROOT) + ":  " + entry.get(field).asText(), lines);
                }
            }
        }
    }

    private static void add(Deque<String> out, String line, int max) {
        out.addLast(line);
        while (out.size() > max) {
            out.removeFirst();
        }
    }
}
