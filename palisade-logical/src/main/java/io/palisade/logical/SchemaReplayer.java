package io.palisade.logical;

import io.palisade.logical.SchemaScript.Extension;
import io.palisade.logical.SchemaScript.Step;
import io.palisade.pgwire.Sql;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs a {@link SchemaScript} on the target database, as the target role ({@code SET ROLE}, so the role owns every
 * object) with {@code search_path} = target namespace, target extension schema and {@code check_function_bodies} off.
 * Each call is one transaction: a failure leaves nothing of it behind. Before the schema: the target's namespace must
 * exist, be usable by the role and hold no objects yet, and the target must be able to have the extensions
 * ({@link Extensions#checkTarget}). The connection must be a superuser's (for {@code SET ROLE}) and outside a
 * transaction. Stateless.
 */
public final class SchemaReplayer {
    private SchemaReplayer() {}

    /** Creates the extensions and runs {@link SchemaScript#steps()}: the schema, before any data. */
    public static void replay(Connection target, SchemaScript script) {
        List<Step> steps = new ArrayList<>();
        for (Extension extension : script.extensions()) {
            steps.add(new Step("extension " + extension.name(), "CREATE EXTENSION IF NOT EXISTS "
                    + Sql.quoteIdent(extension.name()) + " WITH SCHEMA " + Sql.quoteIdent(script.target().extensionSchema())
                    + " VERSION '" + extension.version().replace("'", "''") + "' CASCADE"));
        }
        steps.addAll(script.steps());
        run(target, script, steps, true);
    }

    /** Runs {@link SchemaScript#afterCopy()}: once the data is there and nothing else writes it. */
    public static void afterCopy(Connection target, SchemaScript script) {
        run(target, script, script.afterCopy(), false);
    }

    private static void run(Connection connection, SchemaScript script, List<Step> steps, boolean fresh) {
        Target to = script.target();
        try {
            if (!connection.getAutoCommit()) {
                throw new IllegalArgumentException("the connection must not be inside a transaction (autocommit on)");
            }
            connection.setAutoCommit(false);
            try {
                Catalog catalog = new Catalog(connection);
                if (fresh) {
                    checkNamespace(catalog, to);
                    Extensions.checkTarget(catalog, script);
                }
                catalog.value("select set_config('search_path', quote_ident(?) || ', ' || quote_ident(?), true)",
                        to.namespace(), to.extensionSchema());
                catalog.value("select set_config('check_function_bodies', 'off', true)");
                catalog.value("select set_config('role', ?, true)", to.role());
                int index = 0;
                for (Step step : steps) {
                    index++;
                    try (Statement statement = connection.createStatement()) {
                        statement.execute(step.sql());
                    } catch (SQLException e) {
                        throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "recreating the tenant's schema "
                                + script.source().namespace() + " in " + to.namespace() + " failed at step " + index
                                + " of " + steps.size() + " (" + step.object() + "): " + e.getMessage() + " (SQLSTATE "
                                + e.getSQLState() + "); the replay is one transaction, so none of it remains on the"
                                + " target; the source and target servers differ or the extraction has a bug: report"
                                + " it with the object named", e);
                    }
                }
                connection.commit();
            } catch (RuntimeException | SQLException e) {
                connection.rollback();
                throw e;
            } finally {
                connection.setAutoCommit(true);
            }
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot recreate the tenant's schema in "
                    + to.namespace() + ": " + e.getMessage() + " (SQLSTATE " + e.getSQLState() + "); check that the"
                    + " target server is up and the connection is a superuser's, then retry", e);
        }
    }

    private static void checkNamespace(Catalog catalog, Target to) throws SQLException {
        List<Catalog.Row> rows = catalog.rows("""
                select n.oid, r.oid is not null as role_exists,
                    r.oid is not null and has_schema_privilege(r.oid, n.oid, 'CREATE, USAGE') as usable,
                    (select string_agg(x.name, ', ') from (
                        select pg_describe_object(o.classid, o.objid, 0) as name from (
                            select 'pg_class'::regclass::oid as classid, c.oid as objid from pg_class c
                                where c.relnamespace = n.oid
                            union all select 'pg_proc'::regclass::oid, p.oid from pg_proc p where p.pronamespace = n.oid
                            union all select 'pg_type'::regclass::oid, t.oid from pg_type t
                                where t.typnamespace = n.oid and t.typrelid = 0 and t.typelem = 0
                        ) o where not exists (select 1 from pg_depend e where e.classid = o.classid
                            and e.objid = o.objid and (e.deptype = 'e' or e.deptype = 'i' and e.refobjid <> e.objid))
                        order by 1 limit 5) x) as objects,
                    exists (select 1 from pg_default_acl d where d.defaclrole = r.oid) as default_privileges
                from (select ?::text as nspname, ?::text as rolname) want
                left join pg_namespace n on n.nspname = want.nspname
                left join pg_roles r on r.rolname = want.rolname
                """, to.namespace(), to.role());
        Catalog.Row row = rows.getFirst();
        if (row.text("oid") == null) {
            throw PalisadeException.notFound("schema " + to.namespace() + " does not exist in the target database;"
                    + " the target rung creates it before the move recreates the tenant's objects there");
        }
        if (!row.flag("role_exists") || !row.flag("usable")) {
            throw new PalisadeException(ErrorCode.CONFLICT, "role " + to.role() + " does not exist on the target or"
                    + " may not create objects in schema " + to.namespace() + "; the target rung sets both up first");
        }
        if (row.flag("default_privileges")) {
            throw new PalisadeException(ErrorCode.CONFLICT, "role " + to.role() + " already has default privileges"
                    + " in the target database, which would change the privileges of the objects a move recreates;"
                    + " remove them (ALTER DEFAULT PRIVILEGES … or DROP OWNED) and retry");
        }
        if (row.text("objects") != null) {
            throw new PalisadeException(ErrorCode.CONFLICT, "schema " + to.namespace() + " in the target database"
                    + " already holds objects (" + row.text("objects") + " …); a move recreates the tenant's schema"
                    + " only in an empty one: clean the target up and retry");
        }
    }
}
