package io.palisade.broker;

import io.palisade.broker.pg.PgError;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A refusal on PandaStack's broker routes, sent as {@code {"error": "..."}} with PandaStack's status; SQL errors carry
 * PandaStack's {@code code} (SQLSTATE), {@code detail}, {@code hint} and {@code where}, and palisade's
 * {@code position}, {@code schema}, {@code table}, {@code column} and {@code constraint} as additions. Immutable.
 */
final class PandaError extends Exception {
    final int status;
    final Map<String, Object> extra;

    PandaError(int status, String error, Map<String, Object> extra) {
        super(error, null, false, false);
        this.status = status;
        this.extra = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(extra));
    }

    static PandaError of(int status, String error) {
        return new PandaError(status, error, Map.of());
    }

    static PandaError badRequest(String error) {
        return of(400, error);
    }

    /** A PostgreSQL error: 400, or 408 for class 57 (a cancelled statement, e.g. 57014 statement timeout). */
    static PandaError sql(PgError e) {
        Map<String, Object> extra = new LinkedHashMap<>();
        extra.put("code", e.sqlState());
        for (var field : List.of(Map.entry('D', "detail"), Map.entry('H', "hint"), Map.entry('W', "where"),
                Map.entry('P', "position"), Map.entry('s', "schema"), Map.entry('t', "table"),
                Map.entry('c', "column"), Map.entry('n', "constraint"))) {
            String value = e.field(field.getKey());
            if (value != null) {
                extra.put(field.getValue(), field.getKey() == 'P' ? (Object) Integer.parseInt(value) : value);
            }
        }
        return new PandaError(e.sqlState().startsWith("57") ? 408 : 400, e.getMessage(), extra);
    }

    /** The body: {@code error} first, then the extra fields. */
    Map<String, Object> body() {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("error", getMessage());
        body.putAll(extra);
        return body;
    }
}
