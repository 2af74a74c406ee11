package io.palisade.broker;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Turns PostgreSQL text values into JSON and JSON parameters into PostgreSQL text, the way Neon's SQL-over-HTTP does.
 * Stateless.
 */
final class JsonValues {
    static final int BOOL = 16;
    static final int INT8 = 20;
    static final int INT2 = 21;
    static final int INT4 = 23;
    static final int JSON = 114;
    static final int FLOAT4 = 700;
    static final int FLOAT8 = 701;
    static final int JSONB = 3802;

    /** Array type OID → element type OID, for the built-in array types converted in non-raw mode. */
    private static final Map<Integer, Integer> ARRAY_ELEMENTS = Map.ofEntries(
            Map.entry(1000, BOOL), Map.entry(1005, INT2), Map.entry(1007, INT4), Map.entry(1016, INT8),
            Map.entry(1021, FLOAT4), Map.entry(1022, FLOAT8), Map.entry(1231, 1700), Map.entry(1009, 25),
            Map.entry(1015, 1043), Map.entry(1014, 1042), Map.entry(199, JSON), Map.entry(3807, JSONB),
            Map.entry(1115, 1114), Map.entry(1185, 1184), Map.entry(1182, 1082), Map.entry(1183, 1083),
            Map.entry(2951, 2950), Map.entry(1001, 17), Map.entry(1028, 26), Map.entry(1002, 18), Map.entry(1003, 19));

    private static final Map<Integer, String> TYPE_NAMES = Map.ofEntries(
            Map.entry(16, "bool"), Map.entry(17, "bytea"), Map.entry(18, "char"), Map.entry(19, "name"),
            Map.entry(20, "int8"), Map.entry(21, "int2"), Map.entry(23, "int4"), Map.entry(25, "text"),
            Map.entry(26, "oid"), Map.entry(114, "json"), Map.entry(142, "xml"), Map.entry(700, "float4"),
            Map.entry(701, "float8"), Map.entry(790, "money"), Map.entry(869, "inet"), Map.entry(650, "cidr"),
            Map.entry(829, "macaddr"), Map.entry(1042, "bpchar"), Map.entry(1043, "varchar"), Map.entry(1082, "date"),
            Map.entry(1083, "time"), Map.entry(1114, "timestamp"), Map.entry(1184, "timestamptz"),
            Map.entry(1186, "interval"), Map.entry(1266, "timetz"), Map.entry(1560, "bit"),
            Map.entry(1562, "varbit"), Map.entry(1700, "numeric"), Map.entry(2249, "record"),
            Map.entry(2278, "void"), Map.entry(2950, "uuid"), Map.entry(3802, "jsonb"), Map.entry(3614, "tsvector"),
            Map.entry(705, "unknown"), Map.entry(1000, "_bool"), Map.entry(1001, "_bytea"), Map.entry(1005, "_int2"),
            Map.entry(1007, "_int4"), Map.entry(1016, "_int8"), Map.entry(1021, "_float4"),
            Map.entry(1022, "_float8"), Map.entry(1231, "_numeric"), Map.entry(1009, "_text"),
            Map.entry(1015, "_varchar"), Map.entry(199, "_json"), Map.entry(3807, "_jsonb"),
            Map.entry(1115, "_timestamp"), Map.entry(1185, "_timestamptz"), Map.entry(1182, "_date"),
            Map.entry(2951, "_uuid"));

    private JsonValues() {}

    /** The broker's JSON mapper: decimals kept exactly as sent (no float rounding, no trailing-zero stripping). */
    static ObjectMapper mapper() {
        return JsonMapper.builder()
                .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
                .disable(JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES)
                .build();
    }

    /** The type's name for the well-known built-in types, else {@code oid:<n>}. */
    static String typeName(int oid) {
        String name = TYPE_NAMES.get(oid);
        return name != null ? name : "oid:" + oid;
    }

    /**
     * Writes one value: NULL → null; in raw mode the exact text as a string; otherwise bool → boolean, int2/int4/
     * float4/float8 → number (NaN and infinities stay strings), json/jsonb → embedded JSON, known arrays → JSON
     * arrays, everything else (int8, numeric, ...) → string.
     */
    static void write(JsonGenerator out, int oid, byte[] bytes, int offset, int length, boolean raw)
            throws IOException {
        if (length < 0) {
            out.writeNull();
            return;
        }
        if (raw) {
            out.writeUTF8String(bytes, offset, length);
            return;
        }
        switch (oid) {
            case BOOL -> out.writeBoolean(length == 1 && bytes[offset] == 't');
            case INT2, INT4 -> out.writeNumber(new String(bytes, offset, length, StandardCharsets.US_ASCII));
            case FLOAT4, FLOAT8 -> {
                String text = new String(bytes, offset, length, StandardCharsets.US_ASCII);
                if (text.equals("NaN") || text.endsWith("Infinity")) {
                    out.writeString(text);
                } else {
                    out.writeNumber(text);
                }
            }
            case JSON, JSONB -> out.writeRawValue(new String(bytes, offset, length, StandardCharsets.UTF_8));
            default -> {
                Integer element = ARRAY_ELEMENTS.get(oid);
                if (element != null) {
                    writeArray(out, element, parseArray(new String(bytes, offset, length, StandardCharsets.UTF_8)));
                } else {
                    out.writeUTF8String(bytes, offset, length);
                }
            }
        }
    }

    private static void writeArray(JsonGenerator out, int element, List<Object> items) throws IOException {
        out.writeStartArray();
        for (Object item : items) {
            if (item == null) {
                out.writeNull();
            } else if (item instanceof List<?> nested) {
                @SuppressWarnings("unchecked")
                List<Object> list = (List<Object>) nested;
                writeArray(out, element, list);
            } else {
                byte[] text = ((String) item).getBytes(StandardCharsets.UTF_8);
                write(out, element, text, 0, text.length, false);
            }
        }
        out.writeEndArray();
    }

    /** Parses PostgreSQL's array output ({@code {1,NULL,"a b"}}, nested, optional {@code [l:u]=} prefix). */
    static List<Object> parseArray(String text) {
        int start = 0;
        if (text.startsWith("[")) {
            start = text.indexOf('=') + 1;
        }
        int[] at = {start};
        return parseLevel(text, at);
    }

    private static List<Object> parseLevel(String text, int[] at) {
        List<Object> items = new ArrayList<>();
        if (text.charAt(at[0]) != '{') {
            throw new IllegalArgumentException("not an array literal");
        }
        at[0]++;
        while (at[0] < text.length()) {
            char c = text.charAt(at[0]);
            if (c == '}') {
                at[0]++;
                return items;
            }
            if (c == ',') {
                at[0]++;
                continue;
            }
            if (c == '{') {
                items.add(parseLevel(text, at));
            } else if (c == '"') {
                StringBuilder value = new StringBuilder();
                at[0]++;
                while (text.charAt(at[0]) != '"') {
                    char ch = text.charAt(at[0]);
                    if (ch == '\\') {
                        at[0]++;
                        ch = text.charAt(at[0]);
                    }
                    value.append(ch);
                    at[0]++;
                }
                at[0]++;
                items.add(value.toString());
            } else {
                int end = at[0];
                while (text.charAt(end) != ',' && text.charAt(end) != '}') {
                    end++;
                }
                String value = text.substring(at[0], end);
                items.add(value.equals("NULL") ? null : value);
                at[0] = end;
            }
        }
        throw new IllegalArgumentException("unterminated array literal");
    }

    /**
     * A JSON request parameter as PostgreSQL text: null → NULL, strings unchanged, numbers/booleans/objects as their
     * JSON text, arrays as array literals (elements quoted, nested recursively, null → NULL).
     */
    static String param(JsonNode node) {
        if (node == null || node.isNull() || node.isMissingNode()) {
            return null;
        }
        if (node.isTextual()) {
            return node.textValue();
        }
        if (node.isArray()) {
            StringBuilder literal = new StringBuilder();
            appendArray(literal, node);
            return literal.toString();
        }
        if (node.isBigDecimal()) {
            return node.decimalValue().toString();
        }
        return node.toString();
    }

    private static void appendArray(StringBuilder literal, JsonNode array) {
        literal.append('{');
        for (int i = 0; i < array.size(); i++) {
            if (i > 0) {
                literal.append(',');
            }
            JsonNode item = array.get(i);
            if (item.isNull()) {
                literal.append("NULL");
            } else if (item.isArray()) {
                appendArray(literal, item);
            } else {
                String text = param(item);
                appendQuotedElement(literal, text);
            }
        }
        literal.append('}');
    }

    /** Appends {@code text} as one quoted element of an array literal: {@code "…"}, quotes and backslashes escaped. */
    static void appendQuotedElement(StringBuilder literal, String text) {
        literal.append('"');
        for (int j = 0; j < text.length(); j++) {
            char c = text.charAt(j);
            if (c == '"' || c == '\\') {
                literal.append('\\');
            }
            literal.append(c);
        }
        literal.append('"');
    }
}
