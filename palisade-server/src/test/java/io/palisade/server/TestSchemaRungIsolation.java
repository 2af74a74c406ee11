package io.palisade.server;

import java.util.List;

/**
 * Cross-tenant attempts and limits on the {@code schema} rung: B's table lives in B's schema of the shared database
 * that A's session is in too. B's database is A's own, so {@code \c} attempts go to the server's other databases.
 */
class TestSchemaRungIsolation extends AbstractTestSharedRungIsolation {
    private static final String GUARD = "privileges can only be granted within this database's own role";

    @Override
    protected String isolation() {
        return "schema";
    }

    @Override
    protected String bTable() {
        return b.role() + ".t";
    }

    @Override
    protected Refusal bTableRefusal() {
        return new Refusal("42501", "permission denied for schema " + b.role());
    }

    @Override
    protected Refusal bLargeObjectRefusal(long oid) {
        return new Refusal("42501", "permission denied for large object " + oid);
    }

    @Override
    protected List<String> foreignDatabases() {
        return List.of("postgres", "template1");
    }

    @Override
    protected List<Attempt> rungGrantAttempts() {
        return List.of(
                new Attempt("GRANT USAGE ON SCHEMA " + a.role() + " TO PUBLIC", "42501", GUARD),
                new Attempt("GRANT USAGE ON SCHEMA " + a.role() + " TO " + b.role(), "42501", GUARD));
    }

    @Override
    protected List<Attempt> rungCreateAttempts() {
        String denied = "permission denied for schema ";
        return List.of(
                new Attempt("CREATE TABLE " + b.role() + ".x (id int)", "42501", denied + b.role()),
                new Attempt("CREATE VIEW " + b.role() + ".v AS SELECT 1", "42501", denied + b.role()),
                new Attempt("ALTER TABLE own SET SCHEMA " + b.role(), "42501", denied + b.role()),
                new Attempt("CREATE TABLE public.x (id int)", "42501", denied + "public"),
                new Attempt("CREATE TABLE extensions.x (id int)", "42501", denied + "extensions"),
                new Attempt("CREATE FUNCTION extensions.f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "42501",
                        denied + "extensions"),
                new Attempt("CREATE SCHEMA s", "42501", "permission denied for database tenants"),
                new Attempt("CREATE EXTENSION seg", "42501", "permission denied to create extension \"seg\""));
    }
}
