package io.palisade.logical;

import static io.palisade.logical.CopySql.exec;
import static io.palisade.pgwire.Sql.quoteIdent;
import static io.palisade.pgwire.Sql.quoteLiteral;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The target side of a {@link LogicalCopy}, in the target database: the staging schema, the subscription, and row
 * level security that would stop the copy.
 *
 * <p>Staging. Logical replication finds a table on the subscriber by the publisher's schema and table name and has no
 * way to map {@code public.t} to {@code tenant_abc.t} (PostgreSQL 16's {@code logicalrep_rel_open} looks the name up as
 * sent). So when the namespaces differ, the replayed tables ({@code ALTER TABLE … SET SCHEMA}, which takes their
 * indexes, constraints, row types and owned sequences along) sit in a schema named like the source's namespace while
 * the subscription runs, and go back at teardown; views, routines and types stay where they were (views refer to
 * tables by oid). That schema is created, with a comment naming the move, when missing (and dropped again); when it
 * exists (the shared database's {@code public} on a move down to the schema rung) it must not hold relations of the
 * same names, and the tenant's tables are told apart there by their owner, the target role, which gets {@code USAGE}
 * on it for the copy (the subscription applies as the tables' owner), revoked at teardown.
 *
 * <p>Row level security. Since PostgreSQL 16 a subscription applies changes as each table's owner, and refuses a table
 * whose row level security applies to its owner ({@code FORCE ROW LEVEL SECURITY}). Such tables get
 * {@code NO FORCE} for the copy and {@code FORCE} back at teardown (the source says which ones). The subscription is
 * not {@code run_as_owner}: the tenant's code in defaults, checks and generated columns runs as the tenant, never as
 * the superuser that owns the subscription. Not thread-safe.
 */
final class CopyTarget {
    private static final String STAGING_MARK = "palisade move staging ";

    private final CopyPlan plan;

    CopyTarget(CopyPlan plan) {
        this.plan = plan;
    }

    /** Moves the tables into the staging schema and creates the subscription; returns its oid. */
    long setUp(Connection target, String password) throws SQLException {
        Catalog catalog = new Catalog(target);
        String leftOver = catalog.value("select coalesce((select 'subscription ' || subname from pg_subscription"
                + " where subname = ?), '')", plan.name());
        if (!leftOver.isEmpty()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "move " + plan.moveId() + " already has " + leftOver
                    + " on the target server, left by an earlier attempt; clean it up (LogicalCopy.cleanUp) or use"
                    + " another move id");
        }
        CopySql.inTransaction(target, () -> {
            exec(target, "set local lock_timeout = '5s'");
            List<String> tables = tables(catalog, plan.target().namespace());
            if (plan.staging().isPresent()) {
                String staging = plan.staging().get();
                if (catalog.value("select count(*)::text from pg_namespace where nspname = ?", staging).equals("0")) {
                    exec(target, "create schema " + quoteIdent(staging) + " authorization "
                            + quoteIdent(plan.target().role()));
                    exec(target, "comment on schema " + quoteIdent(staging) + " is "
                            + quoteLiteral(STAGING_MARK + plan.moveId()));
                } else {
                    String clash = catalog.value("select string_agg(s.relname, ', ' order by s.relname) from pg_class s"
                            + " join pg_class t on t.relname = s.relname"
                            + " where s.relnamespace = quote_ident(?)::regnamespace"
                            + " and t.relnamespace = quote_ident(?)::regnamespace", staging, plan.target().namespace());
                    if (clash != null) {
                        throw new PalisadeException(ErrorCode.CONFLICT, "schema " + staging + " of the target database"
                                + " already holds relations named like the tenant's (" + clash + "); the copy needs"
                                + " them there while it runs (logical replication cannot rename schemas): move them"
                                + " away or let the other move finish, then retry");
                    }
                    // the subscription applies as the tables' owner, who needs to reach them there
                    exec(target, "grant usage on schema " + quoteIdent(staging) + " to " + quoteIdent(plan.target().role()));
                }
                for (String table : tables) {
                    exec(target, "alter table " + quoteIdent(plan.target().namespace()) + "." + quoteIdent(table)
                            + " set schema " + quoteIdent(staging));
                }
            }
            for (String table : forced(catalog, tableNamespace())) {
                exec(target, "alter table " + quoteIdent(tableNamespace()) + "." + quoteIdent(table)
                        + " no force row level security");
            }
        });
        String conninfo = "host=" + value(plan.publisher().host()) + " port=" + plan.publisher().port() + " dbname="
                + value(plan.sourceDatabase()) + " user=" + value(plan.name()) + " password=" + value(password)
                + " application_name=" + value(plan.name()) + " connect_timeout=10";
        exec(target, "create subscription " + quoteIdent(plan.name()) + " connection " + quoteLiteral(conninfo)
                + " publication " + quoteIdent(plan.name()) + " with (copy_data = true, create_slot = false, slot_name = "
                + quoteLiteral(plan.name()) + ", run_as_owner = false)");
        return Long.parseLong(catalog.value("select oid::text from pg_subscription where subname = ?", plan.name()));
    }

    /**
     * Drops the subscription (and through it the slots on the source; when the source cannot be reached, the
     * subscription alone: the source's cleanup drops its slots), moves the tables back, restores {@code FORCE ROW LEVEL
     * SECURITY} on {@code forced}, drops a staging schema this move created. Idempotent.
     */
    void tearDown(Connection target, Set<String> forced) throws SQLException {
        Catalog catalog = new Catalog(target);
        if (catalog.value("select count(*)::text from pg_subscription where subname = ?", plan.name()).equals("1")) {
            try {
                exec(target, "drop subscription " + quoteIdent(plan.name()));
            } catch (SQLException e) {
                exec(target, "alter subscription " + quoteIdent(plan.name()) + " disable");
                exec(target, "alter subscription " + quoteIdent(plan.name()) + " set (slot_name = none)");
                exec(target, "drop subscription " + quoteIdent(plan.name()));
            }
        }
        CopySql.inTransaction(target, () -> {
            if (plan.staging().isPresent()) {
                String staging = plan.staging().get();
                if (catalog.value("select count(*)::text from pg_namespace where nspname = ?", staging).equals("1")) {
                    for (String table : catalog.rows("select c.relname::text as name from pg_class c where"
                            + " c.relnamespace = quote_ident(?)::regnamespace and c.relkind in ('r', 'p')"
                            + " and c.relowner = quote_ident(?)::regrole order by 1", staging, plan.target().role())
                            .stream().map(r -> r.text("name")).toList()) {
                        exec(target, "alter table " + quoteIdent(staging) + "." + quoteIdent(table) + " set schema "
                                + quoteIdent(plan.target().namespace()));
                    }
                    String mark = catalog.value("select obj_description(quote_ident(?)::regnamespace, 'pg_namespace')",
                            staging);
                    if ((STAGING_MARK + plan.moveId()).equals(mark)) {
                        exec(target, "drop schema " + quoteIdent(staging));
                    } else {
                        exec(target, "revoke usage on schema " + quoteIdent(staging) + " from "
                                + quoteIdent(plan.target().role()));
                    }
                }
            }
            for (String table : tables(catalog, plan.target().namespace())) {
                if (forced.contains(table)) {
                    exec(target, "alter table " + quoteIdent(plan.target().namespace()) + "." + quoteIdent(table)
                            + " force row level security");
                }
            }
        });
    }

    /** Where the tenant's tables are while the subscription runs. */
    String tableNamespace() {
        return plan.staging().orElse(plan.target().namespace());
    }

    /** The tables of {@code namespace}, by name. */
    static List<String> tables(Catalog catalog, String namespace) throws SQLException {
        List<String> tables = new ArrayList<>();
        for (Catalog.Row row : catalog.rows("select relname::text as name from pg_class where relnamespace ="
                + " quote_ident(?)::regnamespace and relkind in ('r', 'p') order by 1", namespace)) {
            tables.add(row.text("name"));
        }
        return tables;
    }

    /** The tables of {@code namespace} with {@code FORCE ROW LEVEL SECURITY}. */
    static List<String> forced(Catalog catalog, String namespace) throws SQLException {
        List<String> tables = new ArrayList<>();
        for (Catalog.Row row : catalog.rows("select relname::text as name from pg_class where relnamespace ="
                + " quote_ident(?)::regnamespace and relkind in ('r', 'p') and relforcerowsecurity order by 1",
                namespace)) {
            tables.add(row.text("name"));
        }
        return tables;
    }

    /** A libpq connection-string value, quoted. */
    private static String value(String text) {
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'";
    }
}
