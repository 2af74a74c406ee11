package io.palisade.broker.pg;

import static java.util.Objects.requireNonNull;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The outcome of one statement: its columns, its rows as raw DataRow bodies (decode with {@link #value}), the command
 * tag, and whether the row cap cut it short ({@code truncated}).
 */
public record QueryResult(List<Field> fields, List<byte[]> rows, String commandTag, boolean truncated) {
    public QueryResult {
        requireNonNull(fields, "fields is null");
        requireNonNull(rows, "rows is null");
        requireNonNull(commandTag, "commandTag is null");
    }

    /** First word of the tag ({@code SELECT}, {@code INSERT}, {@code CREATE}...), or "" for an empty query. */
    public String command() {
        int space = commandTag.indexOf(' ');
        return space < 0 ? commandTag : commandTag.substring(0, space);
    }

    /** The tag's row count (for INSERT the word after the OID), or null when the tag has none. */
    public Long rowCount() {
        int space = commandTag.lastIndexOf(' ');
        if (space < 0) {
            return null;
        }
        try {
            return Long.parseLong(commandTag.substring(space + 1));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /**
     * Visits the values of one DataRow body: calls {@code visitor} with (column, bytes, offset, length), length -1
     * for NULL.
     */
    public static void forEachValue(byte[] row, ValueVisitor visitor) {
        int count = ((row[0] & 0xff) << 8) | (row[1] & 0xff);
        int at = 2;
        for (int column = 0; column < count; column++) {
            int length = ((row[at] & 0xff) << 24) | ((row[at + 1] & 0xff) << 16) | ((row[at + 2] & 0xff) << 8)
                    | (row[at + 3] & 0xff);
            at += 4;
            visitor.value(column, row, at, length);
            if (length > 0) {
                at += length;
            }
        }
    }

    /** The text of one column of a DataRow body, or null for NULL. For tests and small results. */
    public static String value(byte[] row, int column) {
        String[] found = new String[1];
        forEachValue(row, (c, bytes, offset, length) -> {
            if (c == column && length >= 0) {
                found[0] = new String(bytes, offset, length, StandardCharsets.UTF_8);
            }
        });
        return found[0];
    }

    @FunctionalInterface
    public interface ValueVisitor {
        void value(int column, byte[] bytes, int offset, int length);
    }
}
