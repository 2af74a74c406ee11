package io.palisade.server;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Cross-tenant attempts and limits on the {@code database} rung: B's table lives in B's own database, which A can name
 * (pg_database lists it) but neither connect to nor reach from its own.
 */
class TestDatabaseRungIsolation extends AbstractTestSharedRungIsolation {
    private static final String GUARD = "privileges can only be granted within this database's own role";

    @Override
    protected String isolation() {
        return "database";
    }

    @Override
    protected String bTable() {
        return b.database() + ".public.t";
    }

    @Override
    protected Refusal bTableRefusal() {
        return new Refusal("0A000", "cross-database references are not implemented");
    }

    @Override
    protected Refusal bLargeObjectRefusal(long oid) {
        return new Refusal("42704", "large object " + oid + " does not exist");
    }

    @Override
    protected List<String> foreignDatabases() {
        return List.of(b.database(), "postgres", "template1", "tenants");
    }

    @Override
    protected List<Attempt> rungGrantAttempts() {
        return List.of(
                new Attempt("GRANT USAGE ON SCHEMA public TO " + b.role(), "42501", GUARD),
                new Attempt("GRANT CREATE ON SCHEMA public TO " + b.role(), "42501", GUARD));
    }

    @Override
    protected List<Attempt> rungCreateAttempts() {
        return List.of(
                new Attempt("CREATE TABLE " + b.database() + ".public.x (id int)", "0A000",
                        "cross-database references are not implemented"),
                new Attempt("CREATE SCHEMA s AUTHORIZATION " + b.role(), "42501",
                        "must be able to SET ROLE \"" + b.role() + "\""));
    }

    /**
     * PostgreSQL fires no event trigger for GRANT on a database, so the grant guard cannot stop A opening its own
     * database to B (it refuses A's every later GRANT while that lasts). Through palisade B still reaches nothing but
     * its own database. Straight at the shared server's loopback port B gets into A's database but reaches nothing A
     * did not open; if A also let everybody create in its {@code public} schema, B can own a table in A's database:
     * deleting B must still drop all of B (the class deletes B first).
     */
    @Test
    void bInADatabaseThatAOpened() throws SQLException {
        int port;
        try (Connection c = PgUrls.connect(a.url()); Statement s = c.createStatement()) {
            s.execute("GRANT CREATE ON SCHEMA public TO PUBLIC");
            s.execute("GRANT CONNECT ON DATABASE " + a.database() + " TO " + b.role());
            port = queryInt(c, "SELECT inet_server_port()");
        }
        assertState(connectFails(login(b, "app", b.password(), a.database())), "28P01",
                "password authentication failed for user \"app\"");
        try (Connection c = direct(port, b.role(), b.password(), a.database());
                Statement s = c.createStatement()) {
            refused(c, new Attempt("SELECT * FROM own", "42501", "permission denied for table own"));
            refused(c, new Attempt("CREATE TEMP TABLE b_in_a (id int)", "42501",
                    "permission denied to create temporary tables in database"));
            refused(c, new Attempt("CREATE SCHEMA b_in_a", "42501", "permission denied for database"));
            s.execute("CREATE TABLE b_in_a (id int)");
        }
    }
}
