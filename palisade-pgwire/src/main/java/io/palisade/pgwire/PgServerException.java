package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * An ErrorResponse from PostgreSQL, with its fields (keyed by the protocol's one-letter codes). Its message reads like
 * {@code ERROR 42P01: relation "x" does not exist}, followed by the detail and hint when the server sent them. After a
 * statement error the connection stays usable; after a FATAL one the server has closed it.
 */
public final class PgServerException extends PalisadeException {
    private final Map<Character, String> fields;

    public PgServerException(Map<Character, String> fields) {
        super(ErrorCode.DRIVER_FAILURE, describe(requireNonNull(fields, "fields is null")));
        this.fields = Map.copyOf(fields);
    }

    /** Parses the body of an ErrorResponse or NoticeResponse ({@code length} bytes from {@code offset}). */
    public static PgServerException parse(byte[] body, int offset, int length) {
        Map<Character, String> fields = new LinkedHashMap<>();
        int at = offset;
        int limit = offset + length;
        while (at < limit && body[at] != 0) {
            char code = (char) body[at++];
            int nul = Bytes.nul(body, at, limit);
            int stop = nul < 0 ? limit : nul;
            fields.putIfAbsent(code, Bytes.utf8(body, at, stop - at));
            at = stop + 1;
        }
        return new PgServerException(fields);
    }

    private static String describe(Map<Character, String> fields) {
        StringBuilder text = new StringBuilder();
        text.append(fields.getOrDefault('V', fields.getOrDefault('S', "ERROR")))
                .append(' ')
                .append(fields.getOrDefault('C', "?????"))
                .append(": ")
                .append(fields.getOrDefault('M', "(the server sent no message)"));
        if (fields.containsKey('D')) {
            text.append(" (detail: ").append(fields.get('D')).append(')');
        }
        if (fields.containsKey('H')) {
            text.append(" (hint: ").append(fields.get('H')).append(')');
        }
        return text.toString();
    }

    /** The SQLSTATE, e.g. {@code 42P01}; empty if the server sent none. */
    public String sqlState() {
        return fields.getOrDefault('C', "");
    }

    /** ERROR, FATAL or PANIC (not localized when the server sent the 'V' field). */
    public String severity() {
        return fields.getOrDefault('V', fields.getOrDefault('S', ""));
    }

    /** The primary message, without severity and SQLSTATE. */
    public String serverMessage() {
        return fields.getOrDefault('M', "");
    }

    public Optional<String> detail() {
        return Optional.ofNullable(fields.get('D'));
    }

    public Optional<String> hint() {
        return Optional.ofNullable(fields.get('H'));
    }

    /** Any field by its protocol code ('P' position, 's' schema, 't' table, ...). */
    public Optional<String> field(char code) {
        return Optional.ofNullable(fields.get(code));
    }

    /** Every field, keyed by its protocol code. */
    public Map<Character, String> fields() {
        return fields;
    }

    /** True for FATAL and PANIC: the server ends the session. */
    public boolean isFatal() {
        String severity = severity();
        return severity.equals("FATAL") || severity.equals("PANIC");
    }
}
