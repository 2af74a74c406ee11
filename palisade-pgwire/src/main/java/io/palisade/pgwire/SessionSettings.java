package io.palisade.pgwire;

import java.util.Locale;
import java.util.Set;

/**
 * The session settings palisade's front doors (the proxy and the SQL broker) pass from a client's startup parameters to
 * a tenant's server: what drivers send at startup (libpq, PgJDBC, node-postgres, psycopg, asyncpg, pgx, Npgsql), all
 * harmless for any login. Anything else in a startup packet ({@code replication}, unknown names) is for each door to
 * refuse. Names compare as PostgreSQL's settings do: case-insensitively. Stateless.
 */
public final class SessionSettings {
    /** The settings, lower case. */
    public static final Set<String> PASSED = Set.of(
            "application_name", "client_encoding", "datestyle", "timezone", "extra_float_digits", "intervalstyle",
            "search_path", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
            "idle_session_timeout", "geqo", "standard_conforming_strings", "bytea_output",
            "default_transaction_read_only", "default_transaction_isolation", "jit", "work_mem");

    private SessionSettings() {}

    /** Whether a startup parameter of this name is one of {@link #PASSED}. */
    public static boolean passed(String name) {
        return PASSED.contains(name.toLowerCase(Locale.ROOT));
    }
}
