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

    /**
     * For a server whose catalog palisade did not write itself (a restored one): takes superuser, replication and
     * bypass-RLS from every role but {@code admin}, and every membership in the roles that reach the host's files and
     * programs ({@code pg_execute_server_program}, {@code pg_read_server_files}, {@code pg_write_server_files}), so
     * that no login of the tenant's can run a program or touch a file on the host. Run as {@code admin}, in any
     * database.
     */
    public static String lockDownCatalog(String admin) {
        String adminLiteral = Sql.quoteLiteral(admin);
        return "DO $palisade$ DECLARE r record; BEGIN"
                + " FOR r IN SELECT rolname FROM pg_catalog.pg_roles WHERE (rolsuper OR rolreplication OR rolbypassrls)"
                + " AND rolname <> " + adminLiteral + " LOOP"
                + " EXECUTE pg_catalog.format('ALTER ROLE %I NOSUPERUSER NOREPLICATION NOBYPASSRLS', r.rolname);"
                + " END LOOP;"
                + " FOR r IN SELECT g.rolname AS granted, m.rolname AS member, o.rolname AS grantor"
                + " FROM pg_catalog.pg_auth_members a JOIN pg_catalog.pg_roles g ON g.oid = a.roleid"
                + " JOIN pg_catalog.pg_roles m ON m.oid = a.member JOIN pg_catalog.pg_roles o ON o.oid = a.grantor"
                + " WHERE g.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files')"
                + " AND m.rolname <> " + adminLiteral + " LOOP"
                + " EXECUTE pg_catalog.format('REVOKE %I FROM %I GRANTED BY %I', r.granted, r.member, r.grantor);"
                + " END LOOP; END $palisade$";
    }

    /**
     * Run first on a management session that changes credentials: its commits wait for the local flush only, never for
     * a synchronous standby. Under {@code durability: sync} a server names its WAL archiver there, and a server palisade
     * has just started from a copy (the state kept by an in-place restore, a fork) has no archiver streaming yet: a
     * plain commit would wait for it forever.
     */
    public static final String LOCAL_COMMIT = "SET synchronous_commit = local";

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
