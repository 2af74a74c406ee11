package io.palisade.proxy;

import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The startup parameters the proxy accepts from a client and passes to the database after authentication. Anything
 * else ({@code replication}, unknown names, names smuggled in through a NUL in a URL-decoded user or database) is
 * refused before the database id is even looked at, with one error that is the same for every id. Names compare like
 * PostgreSQL's settings: case-insensitively. Stateless and thread-safe.
 */
final class StartupParameters {
    /**
     * What drivers send at startup: libpq, PgJDBC, node-postgres, psycopg, asyncpg, pgx, Npgsql. Settings beyond these
     * can still be given in {@code options} ({@code -c name=value}), which the database checks after authentication.
     */
    static final Set<String> ALLOWED = Set.of(
            "user", "database", "options", "application_name", "fallback_application_name", "client_encoding",
            "datestyle", "timezone", "extra_float_digits", "intervalstyle", "search_path", "statement_timeout",
            "lock_timeout", "idle_in_transaction_session_timeout", "idle_session_timeout", "geqo",
            "standard_conforming_strings", "bytea_output", "default_transaction_read_only",
            "default_transaction_isolation", "jit", "work_mem");

    private StartupParameters() {}

    /** The error text for the first parameter the proxy refuses, or empty if all are allowed. */
    static Optional<String> refusal(Map<String, String> parameters) {
        for (String name : parameters.keySet()) {
            if (!ALLOWED.contains(name.toLowerCase(Locale.ROOT))) {
                return Optional.of("the startup parameter \"" + truncate(name) + "\" is not supported through the"
                        + " palisade proxy (replication connections are not offered); pass settings as"
                        + " options='-c name=value' instead");
            }
        }
        return Optional.empty();
    }

    private static String truncate(String name) {
        return name.length() <= 64 ? name : name.substring(0, 64) + "...";
    }
}
