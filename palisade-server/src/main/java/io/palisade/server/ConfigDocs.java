package io.palisade.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The documentation generated from {@link ConfigKeys}: the text of {@code palisade serve --help-config} and the
 * README's configuration table. {@link #main} rewrites the table in a README file. Stateless, safe to share between
 * threads.
 */
public final class ConfigDocs {
    /** The README lines the generated table sits between. */
    public static final String TABLE_START = "<!-- configuration table: generated from ConfigKeys by ConfigDocs -->";
    public static final String TABLE_END = "<!-- end of the generated configuration table -->";

    private static final int WIDTH = 110;

    private ConfigDocs() {}

    /** Every key with its type, default and description, for a terminal. */
    public static String helpText() {
        StringBuilder out = new StringBuilder();
        out.append("Configuration keys of palisade serve (set with -c key=value or in a --config .properties file):\n");
        for (Setting<?> key : ConfigKeys.ALL) {
            out.append('\n').append(key.name()).append("  (").append(key.type().name())
                    .append(key.secret() ? ", secret" : "").append(")  default: ").append(defaultText(key))
                    .append('\n');
            wrap(out, key.description() + (key.type().explains() ? "; must be " + key.type().expected() : "") + ".",
                    "    ");
        }
        return out.toString();
    }

    /** The README's configuration table in Markdown, without the marker lines. */
    public static String markdownTable() {
        StringBuilder out = new StringBuilder();
        out.append("| key | type | default | meaning |\n|---|---|---|---|\n");
        for (Setting<?> key : ConfigKeys.ALL) {
            String defaultCell = key.defaultValue().map(value -> "`" + value + "`")
                    .orElse(key.unsetMeaning().isEmpty() ? "—" : key.unsetMeaning());
            out.append("| `").append(key.name()).append("` | ").append(cell(key.type().name()))
                    .append(key.secret() ? ", secret" : "").append(" | ").append(cell(defaultCell)).append(" | ")
                    .append(cell(key.description())).append(" |\n");
        }
        return out.toString();
    }

    /** {@code readme} with the text between the markers replaced by the generated table. */
    public static String withTable(String readme) {
        int start = readme.indexOf(TABLE_START);
        int end = readme.indexOf(TABLE_END);
        if (start < 0 || end < start) {
            throw new IllegalArgumentException("README has no generated configuration table between the lines '"
                    + TABLE_START + "' and '" + TABLE_END + "'");
        }
        return readme.substring(0, start + TABLE_START.length()) + "\n" + markdownTable() + readme.substring(end);
    }

    /** The table as it is in {@code readme}, between the markers. */
    public static String tableIn(String readme) {
        int start = readme.indexOf(TABLE_START);
        int end = readme.indexOf(TABLE_END);
        if (start < 0 || end < start) {
            return "";
        }
        return readme.substring(start + TABLE_START.length() + 1, end);
    }

    /** Rewrites the configuration table of the README given as the only argument (default {@code README.md}). */
    public static void main(String[] args) {
        Path readme = Path.of(args.length > 0 ? args[0] : "README.md");
        try {
            String before = Files.readString(readme, StandardCharsets.UTF_8);
            String after = withTable(before);
            Files.writeString(readme, after, StandardCharsets.UTF_8);
            System.out.println(before.equals(after) ? readme + ": configuration table already current"
                    : readme + ": configuration table regenerated");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot rewrite " + readme + ": " + e.getMessage(), e);
        }
    }

    private static String defaultText(Setting<?> key) {
        return key.defaultValue().orElse(key.unsetMeaning().isEmpty() ? "unset" : "unset (" + key.unsetMeaning() + ")");
    }

    private static String cell(String text) {
        return text.replace("|", "\\|").replace("<", "&lt;");
    }

    private static void wrap(StringBuilder out, String text, String indent) {
        StringBuilder line = new StringBuilder(indent);
        for (String word : List.of(text.split(" "))) {
            if (line.length() > indent.length() && line.length() + 1 + word.length() > WIDTH) {
                out.append(line).append('\n');
                line = new StringBuilder(indent);
            }
            if (line.length() > indent.length()) {
                line.append(' ');
            }
            line.append(word);
        }
        out.append(line).append('\n');
    }
}
