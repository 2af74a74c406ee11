package io.palisade.broker;

import com.fasterxml.jackson.core.JsonGenerator;
import io.palisade.broker.pg.Field;
import io.palisade.broker.pg.QueryResult;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;

/**
 * Writes results as PandaStack's broker does: {@code columns} of {@code {name, type}} with the upper-case type names
 * its Go driver reports ({@code INT4}, {@code TEXT}, {@code TIMESTAMPTZ}, {@code _INT4}; "" for a type it does not
 * name), {@code rows} as arrays, {@code count} (rows returned), timestamps and dates in RFC 3339; palisade adds
 * {@code type_oid}, {@code command} and {@code truncated}. Other values as {@link JsonValues} writes them. Stateless.
 */
final class PandaJson {
    private static final int DATE = 1082;
    private static final int TIMESTAMP = 1114;
    private static final int TIMESTAMPTZ = 1184;

    private PandaJson() {}

    /** PandaStack's name of a type: the upper-case built-in name, or "" for one it does not know. */
    static String typeName(int oid) {
        String name = JsonValues.typeName(oid);
        return name.startsWith("oid:") ? "" : name.toUpperCase(Locale.ROOT);
    }

    /** {@code columns}, {@code rows} and {@code count} (plus {@code command} and {@code truncated}) as fields. */
    static void writeRows(JsonGenerator json, QueryResult result) throws IOException {
        List<Field> fields = result.fields();
        json.writeFieldName("columns");
        json.writeStartArray();
        for (Field field : fields) {
            json.writeStartObject();
            json.writeStringField("name", field.name());
            json.writeStringField("type", typeName(field.typeOid()));
            json.writeNumberField("type_oid", field.typeOid());
            json.writeEndObject();
        }
        json.writeEndArray();
        json.writeFieldName("rows");
        json.writeStartArray();
        IOException[] failure = new IOException[1];
        for (byte[] row : result.rows()) {
            json.writeStartArray();
            QueryResult.forEachValue(row, (column, bytes, offset, length) -> {
                try {
                    writeValue(json, fields.get(column).typeOid(), bytes, offset, length);
                } catch (IOException e) {
                    failure[0] = e;
                }
            });
            if (failure[0] != null) {
                throw failure[0];
            }
            json.writeEndArray();
        }
        json.writeEndArray();
        json.writeNumberField("count", result.rows().size());
        json.writeStringField("command", result.command());
        json.writeBooleanField("truncated", result.truncated());
    }

    /** The rows a command reports in its tag ({@code INSERT 0 2} → 2), 0 when it reports none. */
    static long rowsAffected(QueryResult result) {
        Long count = result.rowCount();
        return count == null ? 0 : count;
    }

    private static void writeValue(JsonGenerator json, int oid, byte[] bytes, int offset, int length)
            throws IOException {
        if (length >= 0 && (oid == TIMESTAMPTZ || oid == TIMESTAMP || oid == DATE)) {
            json.writeString(rfc3339(new String(bytes, offset, length, StandardCharsets.US_ASCII), oid));
            return;
        }
        JsonValues.write(json, oid, bytes, offset, length, false);
    }

    /**
     * PostgreSQL's ISO text of a timestamp or date in RFC 3339 ({@code 2026-06-13 10:00:00.5+02} →
     * {@code 2026-06-13T10:00:00.5+02:00}; without a zone, UTC as PandaStack's driver reads it). Values RFC 3339
     * cannot hold (infinity, BC, a zone with seconds) stay as PostgreSQL wrote them.
     */
    static String rfc3339(String text, int oid) {
        if (text.isEmpty() || !Character.isDigit(text.charAt(0)) || text.endsWith(" BC")) {
            return text;
        }
        if (oid == DATE) {
            return text + "T00:00:00Z";
        }
        int space = text.indexOf(' ');
        if (space < 0) {
            return text;
        }
        String local = text.substring(0, space) + "T" + text.substring(space + 1);
        if (oid == TIMESTAMP) {
            return local + "Z";
        }
        int sign = Math.max(local.lastIndexOf('+'), local.lastIndexOf('-'));
        if (sign <= space) {
            return text;
        }
        String zone = local.substring(sign);
        String clock = local.substring(0, sign);
        return switch (zone.length()) {
            case 3 -> clock + (zone.equals("+00") ? "Z" : zone + ":00");
            case 6 -> clock + (zone.equals("+00:00") ? "Z" : zone);
            default -> text;
        };
    }
}
