package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import io.palisade.pgwire.Sql;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.Connection;
import java.sql.SQLException;

/**
 * Holds the tenant's schema still for the length of a move: event triggers in the source database refuse (SQLSTATE
 * 55006, "object in use") every DDL command a session of the tenant's role runs, except on its temporary objects, from
 * before the schema is read until the copy is removed. A schema change during the copy would be lost (DDL is not
 * replicated) and, worse, would let the tenant swap a published table for a view whose functions the initial copy
 * would run as the move's replication login.
 *
 * <p>Everything lives in a schema of its own, {@code palisade_move_<id>}, owned by the superuser that installs it:
 * the trigger functions ({@code SECURITY INVOKER}, {@code search_path = pg_catalog}) and two event triggers named like
 * the schema, on {@code ddl_command_end} (creations and alterations, including renames) and {@code sql_drop}. A
 * command is refused when the tenant's role is its session user or its current user (tenant code that others run as
 * the tenant: autovacuum's ANALYZE evaluating an index expression). The install creates schema and functions with plain
 * {@code CREATE}: a schema of that name made beforehand fails it rather than being adopted. The tenant's role has no
 * privilege on that schema; dropping the triggers needs a superuser. {@link #remove} is
 * idempotent and finds everything by the move's name. The connection must be a superuser's, outside a transaction.
 * Stateless.
 */
public final class DdlFreeze {
    private DdlFreeze() {}

    /** Installs the freeze for {@code plan}'s tenant role in the connection's database (idempotent). */
    public static void install(Connection source, CopyPlan plan) {
        requireNonNull(source, "source is null");
        String schema = Sql.quoteIdent(plan.name());
        String role = Sql.quoteLiteral(plan.source().role());
        // the tenant's own sessions, and tenant code run by others as the tenant (autovacuum's ANALYZE evaluates index
        // expressions as the table's owner)
        String tenantRuns = "(session_user operator(pg_catalog.=) " + role + "::pg_catalog.name or current_user"
                + " operator(pg_catalog.=) " + role + "::pg_catalog.name)";
        String message = Sql.quoteLiteral("a move of this database to another rung is under way; schema changes are"
                + " refused until it ends (GET /v1/databases/{id}/move shows it)");
        try {
            CopySql.inTransaction(source, () -> {
                // plain CREATE: a schema or function of that name made beforehand (by a tenant who read the move id)
                // fails the install instead of being adopted with its owner
                CopySql.exec(source, "create schema " + schema);
                CopySql.exec(source, "revoke all on schema " + schema + " from public");
                CopySql.exec(source, "create function " + schema + ".refuse_changes() returns event_trigger"
                        + " language plpgsql security invoker set search_path = pg_catalog as $freeze$"
                        + " begin"
                        + "   if " + tenantRuns + " and exists ("
                        + "       select from pg_catalog.pg_event_trigger_ddl_commands() c"
                        + "       where c.schema_name is null or c.schema_name operator(pg_catalog.!~) '^pg_temp') then"
                        + "     raise exception using errcode = '55006', message = " + message + ";"
                        + "   end if;"
                        + " end $freeze$");
                CopySql.exec(source, "create function " + schema + ".refuse_drops() returns event_trigger"
                        + " language plpgsql security invoker set search_path = pg_catalog as $freeze$"
                        + " begin"
                        + "   if " + tenantRuns + " and exists ("
                        + "       select from pg_catalog.pg_event_trigger_dropped_objects() d"
                        + "       where not d.is_temporary) then"
                        + "     raise exception using errcode = '55006', message = " + message + ";"
                        + "   end if;"
                        + " end $freeze$");
                CopySql.exec(source, "create event trigger " + Sql.quoteIdent(plan.name() + "_changes")
                        + " on ddl_command_end execute function " + schema + ".refuse_changes()");
                CopySql.exec(source, "create event trigger " + Sql.quoteIdent(plan.name() + "_drops")
                        + " on sql_drop execute function " + schema + ".refuse_drops()");
            });
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "move " + plan.moveId() + ": cannot hold the tenant's"
                    + " schema changes off on the source: " + e.getMessage() + "; nothing was moved, retry", e);
        }
    }

    /** Removes the freeze of {@code plan} (event triggers, functions, schema); does nothing where none is left. */
    public static void remove(Connection source, CopyPlan plan) {
        requireNonNull(source, "source is null");
        try {
            CopySql.inTransaction(source, () -> {
                CopySql.exec(source, "drop event trigger if exists " + Sql.quoteIdent(plan.name() + "_changes"));
                CopySql.exec(source, "drop event trigger if exists " + Sql.quoteIdent(plan.name() + "_drops"));
                // only the schema the install made (a superuser's): a tenant's schema of that name is not ours to drop
                String ours = new Catalog(source).value("select (select r.rolsuper from pg_catalog.pg_namespace n"
                        + " join pg_catalog.pg_roles r on r.oid operator(pg_catalog.=) n.nspowner"
                        + " where n.nspname operator(pg_catalog.=) ?::pg_catalog.name)::text", plan.name());
                if ("true".equals(ours)) {
                    CopySql.exec(source, "drop schema " + Sql.quoteIdent(plan.name()) + " cascade");
                }
            });
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "move " + plan.moveId() + ": cannot remove the hold"
                    + " on the tenant's schema changes: " + e.getMessage() + "; retry the clean-up", e);
        }
    }
}
