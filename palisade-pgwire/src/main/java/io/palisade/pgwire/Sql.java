package io.palisade.pgwire;

/**
 * Quoting for SQL text built by palisade: identifiers and string literals. Literals assume
 * {@code standard_conforming_strings = on} (PostgreSQL's default since 9.1), so only quotes are doubled; the same form
 * is accepted by the replication command parser. Stateless.
 */
public final class Sql {
    private Sql() {}

    /** {@code "name"} with embedded double quotes doubled. */
    public static String quoteIdent(String identifier) {
        check(identifier, "identifier");
        if (identifier.isEmpty()) {
            throw new IllegalArgumentException("an SQL identifier cannot be empty");
        }
        return '"' + identifier.replace("\"", "\"\"") + '"';
    }

    /** {@code 'text'} with embedded single quotes doubled. */
    public static String quoteLiteral(String value) {
        check(value, "literal");
        return '\'' + value.replace("'", "''") + '\'';
    }

    private static void check(String value, String what) {
        if (value == null) {
            throw new IllegalArgumentException("an SQL " + what + " cannot be null");
        }
        if (value.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("an SQL " + what + " cannot contain NUL characters");
        }
    }
}
