package io.palisade.agent.shared;

import io.palisade.pgwire.TenantBootstrap;
import java.util.List;
import java.util.stream.Stream;

/**
 * The SQL that makes a fresh PostgreSQL server fit to hold many tenants, run once by the superuser when palisade
 * creates the server. Kept apart from the code that runs it so it reads as one policy.
 */
final class SharedServerSql {
    private SharedServerSql() {}

    /** In {@code postgres}: no tenant may connect to the server's own databases; the schema rung's shared database. */
    static final List<String> SERVER = Stream.concat(TenantBootstrap.CLOSE_SERVER_DATABASES.stream(), Stream.of(
            "CREATE DATABASE " + TenantLayout.SHARED_DATABASE,
            "REVOKE ALL ON DATABASE " + TenantLayout.SHARED_DATABASE + " FROM PUBLIC")).toList();

    /**
     * The grant guard: a tenant may grant privileges on what it owns only to itself (and to PUBLIC inside objects no
     * other tenant can reach: not on schemas of the shared database, never on a database). What it owns includes what
     * {@code pg_database_owner} owns in a database that is the tenant's own (its {@code public} schema): a grant there
     * to another tenant's role would also keep that role from ever being dropped. Policies count as grants (a policy
     * naming a role also keeps it from being dropped). Fires after GRANT, ALTER DEFAULT PRIVILEGES, CREATE POLICY and
     * ALTER POLICY and aborts the command with 42501. Owned by the superuser; a tenant cannot drop or disable it.
     * PostgreSQL fires no event trigger for GRANT on a database (a shared object): a {@code database} tenant can still
     * grant CONNECT on its own database, which opens only that database and is revoked when the grantee is dropped.
     * The function runs as the tenant, so every catalog is named with {@code pg_catalog.} and {@code pg_temp} is last on
     * its path: a tenant's temporary view called {@code pg_roles} must not answer for the catalog.
     */
    private static final String GRANT_GUARD = """
            CREATE FUNCTION palisade_guard.only_own_grants() RETURNS event_trigger
            LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
            DECLARE
                me pg_catalog.oid;
                mine pg_catalog.oid[];
                offending pg_catalog.text;
            BEGIN
                SELECT oid INTO me FROM pg_catalog.pg_roles WHERE rolname = session_user AND NOT rolsuper;
                IF me IS NULL THEN
                    -- a superuser's session running a tenant's code as the tenant (autovacuum's ANALYZE evaluates an
                    -- index expression as the table's owner)
                    SELECT oid INTO me FROM pg_catalog.pg_roles WHERE rolname = current_user AND NOT rolsuper;
                END IF;
                IF me IS NULL THEN
                    RETURN;
                END IF;
                mine := ARRAY[me];
                IF EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = current_database() AND datdba = me) THEN
                    mine := mine || 'pg_database_owner'::regrole::oid;
                END IF;
                SELECT string_agg(DISTINCT coalesce(r.rolname, 'PUBLIC') || ' on ' || a.what, ', ') INTO offending
                FROM (
                    SELECT 'relation ' || c.oid::regclass AS what, c.relowner AS owner, (aclexplode(c.relacl)).grantee
                        FROM pg_catalog.pg_class c WHERE c.relowner = ANY (mine) AND c.relacl IS NOT NULL
                    UNION ALL SELECT 'a column of ' || c.oid::regclass, c.relowner, (aclexplode(a.attacl)).grantee
                        FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
                        WHERE c.relowner = ANY (mine) AND a.attacl IS NOT NULL
                    UNION ALL SELECT 'schema ' || n.nspname, n.nspowner, (aclexplode(n.nspacl)).grantee
                        FROM pg_catalog.pg_namespace n WHERE n.nspowner = ANY (mine) AND n.nspacl IS NOT NULL
                    UNION ALL SELECT 'function ' || p.oid::regprocedure, p.proowner, (aclexplode(p.proacl)).grantee
                        FROM pg_catalog.pg_proc p WHERE p.proowner = ANY (mine) AND p.proacl IS NOT NULL
                    UNION ALL SELECT 'type ' || t.oid::regtype, t.typowner, (aclexplode(t.typacl)).grantee
                        FROM pg_catalog.pg_type t WHERE t.typowner = ANY (mine) AND t.typacl IS NOT NULL
                    UNION ALL SELECT 'default privileges', d.defaclrole, (aclexplode(d.defaclacl)).grantee
                        FROM pg_catalog.pg_default_acl d WHERE d.defaclrole = ANY (mine)
                    UNION ALL SELECT 'large object ' || l.oid, l.lomowner, (aclexplode(l.lomacl)).grantee
                        FROM pg_catalog.pg_largeobject_metadata l
                        WHERE l.lomowner = ANY (mine) AND l.lomacl IS NOT NULL
                    UNION ALL SELECT 'policy ' || p.polname || ' on ' || c.oid::regclass, c.relowner, unnest(p.polroles)
                        FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
                        WHERE c.relowner = ANY (mine)
                    UNION ALL SELECT 'database ' || d.datname, d.datdba, (aclexplode(d.datacl)).grantee
                        FROM pg_catalog.pg_database d WHERE d.datdba = me AND d.datacl IS NOT NULL
                ) a LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
                WHERE a.grantee <> a.owner AND a.grantee <> me
                  AND (a.grantee <> 0
                       OR a.what LIKE 'database %'
                       OR (a.what LIKE 'schema %' AND current_database() = 'tenants'));
                IF offending IS NOT NULL THEN
                    RAISE EXCEPTION 'privileges can only be granted within this database''s own role'
                        USING ERRCODE = '42501', DETAIL = 'refused: ' || offending;
                END IF;
            END
            $fn$""";

    /** In {@code template1} (so in every {@code database}-rung tenant's database) and in the shared database. */
    static final List<String> GUARD = List.of(
            "CREATE SCHEMA palisade_guard",
            "REVOKE ALL ON SCHEMA palisade_guard FROM PUBLIC",
            GRANT_GUARD,
            "REVOKE ALL ON FUNCTION palisade_guard.only_own_grants() FROM PUBLIC",
            "CREATE EVENT TRIGGER palisade_only_own_grants ON ddl_command_end "
                    + "WHEN TAG IN ('GRANT', 'ALTER DEFAULT PRIVILEGES', 'CREATE POLICY', 'ALTER POLICY') "
                    + "EXECUTE FUNCTION palisade_guard.only_own_grants()");

    /** The trusted extensions a {@code schema} tenant finds ready (it cannot create extensions itself). */
    static final List<String> SHARED_EXTENSIONS = List.of("pg_trgm", "hstore", "citext", "btree_gist", "pgcrypto",
            "uuid-ossp", "unaccent", "fuzzystrmatch", "intarray", "ltree", "cube", "earthdistance", "tablefunc");

    /** The schema those extensions live in, on every {@code schema} tenant's search path after its own schema. */
    static final String EXTENSIONS_SCHEMA = "extensions";

    /** In the shared database: nothing in {@code public}, the shared extensions, the guard (see {@link #GUARD}). */
    static List<String> sharedDatabase() {
        List<String> sql = new java.util.ArrayList<>(List.of(
                "REVOKE ALL ON SCHEMA public FROM PUBLIC",
                "CREATE SCHEMA " + EXTENSIONS_SCHEMA,
                "GRANT USAGE ON SCHEMA " + EXTENSIONS_SCHEMA + " TO PUBLIC"));
        for (String extension : SHARED_EXTENSIONS) {
            sql.add("CREATE EXTENSION IF NOT EXISTS \"" + extension + "\" SCHEMA " + EXTENSIONS_SCHEMA);
        }
        return sql;
    }
}
