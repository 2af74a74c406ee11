package io.palisade.pgwire;

import java.util.List;

/**
 * The SQL that gives a tenant its role, password and database, the same on every rung: a tenant role logs in and has
 * nothing that reaches beyond its own objects, its password reaches a server only as a SCRAM verifier (never in a
 * statement log), and a server's own databases are closed to {@code PUBLIC}. Stateless.
 */
public final class TenantBootstrap {
    /** What a tenant role never has; also taken away from a tenant role that a restored catalog brings back. */
    private static final String NO_POWERS = "NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS";
    private static final String VERIFIER = "[A-Za-z0-9+/=$:-]+";

    /** Closes a server's own databases to every tenant role (run once, in {@code postgres}, on a new server). */
    public static final List<String> CLOSE_SERVER_DATABASES = List.of(
            "REVOKE ALL ON DATABASE postgres FROM PUBLIC",
            "REVOKE ALL ON DATABASE template1 FROM PUBLIC");

    private TenantBootstrap() {}

    /** A tenant role on a server of its own: it logs in, and creates nothing outside its database. */
    public static String createRole(String role) {
        return "CREATE ROLE " + Sql.quoteIdent(role) + " LOGIN NOCREATEDB " + NO_POWERS;
    }

    /**
     * A tenant role on a shared server: as {@link #createRole(String)}, and it inherits nothing, is held to
     * {@code connectionLimit} sessions and gets its password (as a verifier) in the same statement.
     */
    public static String createSharedRole(String role, int connectionLimit, String password) {
        if (connectionLimit < 1) {
            throw new IllegalArgumentException("a tenant's connection limit must be positive: " + connectionLimit);
        }
        return createRole(role) + " NOINHERIT CONNECTION LIMIT " + connectionLimit + " PASSWORD "
                + verifierLiteral(password);
    }

    /** Takes from a tenant role whatever reaches beyond its own objects (for a role a restored catalog brings back). */
    public static String stripPowers(String role) {
        return "ALTER ROLE " + Sql.quoteIdent(role) + " " + NO_POWERS;
    }

    /** Sets a role's password as a fresh SCRAM verifier: the plaintext never reaches the server or its logs. */
    public static String setPassword(String role, String password) {
        return "ALTER ROLE " + Sql.quoteIdent(role) + " PASSWORD " + verifierLiteral(password);
    }

    /** The tenant's database, owned by its role. */
    public static String createDatabase(String database, String owner) {
        return "CREATE DATABASE " + Sql.quoteIdent(database) + " OWNER " + Sql.quoteIdent(owner);
    }

    private static String verifierLiteral(String password) {
        String verifier = ScramVerifier.of(password);
        if (!verifier.matches(VERIFIER)) {
            throw new IllegalStateException("unexpected characters in a SCRAM verifier");
        }
        return Sql.quoteLiteral(verifier);
    }
}
