package io.palisade.broker.pg;

import static java.util.Objects.requireNonNull;

import io.palisade.pgwire.PgServerException;
import java.util.Map;

/**
 * An ErrorResponse from PostgreSQL, with every field it carried (keyed by the protocol's one-letter codes). Thrown by
 * {@link PgConnection}; the connection stays usable after it (the broker decides whether to keep it). Parsed by
 * palisade-pgwire's {@link PgServerException#parse}; kept apart from it because the broker answers it to the client
 * field by field rather than as a palisade error.
 */
public final class PgError extends RuntimeException {
    private final Map<Character, String> fields;

    public PgError(Map<Character, String> fields) {
        super(fields.getOrDefault('M', "unknown PostgreSQL error"));
        this.fields = Map.copyOf(requireNonNull(fields, "fields is null"));
    }

    static PgError parse(byte[] body, int length) {
        return new PgError(PgServerException.parse(body, 0, length).fields());
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
