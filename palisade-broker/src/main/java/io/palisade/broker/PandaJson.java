package io.palisade.broker;

import com.fasterxml.jackson.core.JsonGenerator;
import io.palisade.broker.pg.Field;
import io.palisade.broker.pg.QueryResult;
import java.io.IOException;
import java.util.List;
import java.util.Locale;

/**
 * Writes results as PandaStack's broker does: {@code columns} of {@code {name, type}} with the upper-case type names
 * its Go driver reports ({@code INT4}, {@code TEXT}, {@code TIMESTAMPTZ}, {@code _INT4}; "" for a type it does not
 * name), {@code rows} as arrays of values in PandaStack's style ({@link PandaValues}), {@code count} (rows returned);
 * palisade adds {@code type_oid}, {@code command} and {@code truncated}. Stateless.
 */
final class PandaJson {
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
                    PandaValues.write(json, fields.get(column).typeOid(), bytes, offset, length);
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
}
