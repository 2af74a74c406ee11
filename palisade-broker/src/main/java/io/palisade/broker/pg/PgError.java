package io.palisade.broker.pg;

import static java.util.Objects.requireNonNull;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An ErrorResponse from PostgreSQL, with every field it carried (keyed by the protocol's one-letter codes). Thrown by
 * {@link PgConnection}; the connection stays usable after it (the broker decides whether to keep it).
 */
public final class PgError extends RuntimeException {
    private final Map<Character, String> fields;

    public PgError(Map<Character, String> fields) {
        super(fields.getOrDefault('M', "unknown PostgreSQL error"));
        this.fields = Map.copyOf(requireNonNull(fields, "fields is null"));
    }

    static PgError parse(byte[] body, int length) {
        Map<Character, String> fields = new LinkedHashMap<>();
        int i = 0;
        while (i < length && body[i] != 0) {
            char code = (char) body[i++];
            int end = i;
            while (end < length && body[end] != 0) {
                end++;
            }
            fields.put(code, new String(body, i, end - i, StandardCharsets.UTF_8));
            i = end + 1;
        }
        return new PgError(fields);
    }

    /** A field by its protocol code ('C' SQLSTATE, 'M' message, 'D' detail, 'P' position, ...), or null. */
    public String field(char code) {
        return fields.get(code);
    }

    public String sqlState() {
        String state = fields.get('C');
        return state == null ? "" : state;
    }

    public String severity() {
        String severity = fields.get('V');
        return severity != null ? severity : fields.getOrDefault('S', "");
    }

    public boolean isAuthenticationFailure() {
        return sqlState().startsWith("28");
    }
}
