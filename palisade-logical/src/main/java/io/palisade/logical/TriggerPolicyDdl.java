package io.palisade.logical;

import io.palisade.logical.SchemaScript.Step;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * Triggers as {@code pg_get_triggerdef} gives them (a partitioned table's trigger creates its partitions' clones) and
 * whether each is enabled (per table, partitions' clones included); row level security (enabled, forced) and policies,
 * their roles mapped (PUBLIC stays PUBLIC, the tenant's role becomes the target's). Stateless.
 */
final class TriggerPolicyDdl {
    private TriggerPolicyDdl() {}

    private static final String TRIGGERS = CatalogSql.NAMESPACE + """
            select quote_ident(c.relname) as tbl, quote_ident(g.tgname) as name, g.tgparentid <> 0 as clone,
                pg_get_triggerdef(g.oid, true) as definition, g.tgenabled
            from pg_trigger g join pg_class c on c.oid = g.tgrelid
            where c.relnamespace = (select oid from ns) and not g.tgisinternal
            order by (select count(*) from pg_partition_ancestors(c.oid)), c.oid, g.tgname
            """;

    private static final String SECURITY = CatalogSql.NAMESPACE + """
            select quote_ident(c.relname) as tbl, c.relrowsecurity, c.relforcerowsecurity
            from pg_class c
            where c.relnamespace = (select oid from ns) and (c.relrowsecurity or c.relforcerowsecurity)
            order by c.oid
            """;

    private static final String POLICIES = CatalogSql.NAMESPACE + """
            select quote_ident(c.relname) as tbl, quote_ident(y.polname) as name, y.polcmd, y.polpermissive,
                array(select r::bigint from unnest(y.polroles) r) as roles,
                pg_get_expr(y.polqual, y.polrelid, true) as qual,
                pg_get_expr(y.polwithcheck, y.polrelid, true) as with_check
            from pg_policy y join pg_class c on c.oid = y.polrelid
            where c.relnamespace = (select oid from ns)
            order by c.oid, y.polname
            """;

    /**
     * Triggers; enabling a trigger {@code ALWAYS} or {@code REPLICA} goes to {@code afterCopy}, since such a trigger
     * would fire while logical replication applies the copied rows.
     */
    static List<Step> triggers(ScriptContext ctx, List<Step> afterCopy) throws SQLException {
        List<Step> steps = new ArrayList<>();
        for (Catalog.Row row : ctx.catalog().rows(TRIGGERS, ctx.namespace())) {
            String object = "trigger " + row.text("name") + " on " + row.text("tbl");
            if (!row.flag("clone")) {
                steps.add(ScriptContext.step(object, ctx.definition(row.text("definition"))));
            }
            String state = switch (row.text("tgenabled")) {
                case "D" -> "DISABLE TRIGGER ";
                case "R" -> "ENABLE REPLICA TRIGGER ";
                case "A" -> "ENABLE ALWAYS TRIGGER ";
                default -> null;
            };
            if (state != null) {
                (state.startsWith("DISABLE") ? steps : afterCopy).add(ScriptContext.step(object,
                        "ALTER TABLE ONLY " + ctx.qualified(row.text("tbl")) + " " + state + row.text("name")));
            }
        }
        return steps;
    }

    static List<Step> security(ScriptContext ctx) throws SQLException {
        List<Step> steps = new ArrayList<>();
        for (Catalog.Row row : ctx.catalog().rows(SECURITY, ctx.namespace())) {
            String table = ctx.qualified(row.text("tbl"));
            String object = "table " + row.text("tbl");
            if (row.flag("relrowsecurity")) {
                steps.add(ScriptContext.step(object, "ALTER TABLE ONLY " + table + " ENABLE ROW LEVEL SECURITY"));
            }
            if (row.flag("relforcerowsecurity")) {
                steps.add(ScriptContext.step(object, "ALTER TABLE ONLY " + table + " FORCE ROW LEVEL SECURITY"));
            }
        }
        for (Catalog.Row row : ctx.catalog().rows(POLICIES, ctx.namespace())) {
            StringBuilder sql = new StringBuilder("CREATE POLICY ").append(row.text("name")).append(" ON ")
                    .append(ctx.qualified(row.text("tbl")))
                    .append(row.flag("polpermissive") ? " AS PERMISSIVE FOR " : " AS RESTRICTIVE FOR ")
                    .append(switch (row.text("polcmd")) {
                        case "r" -> "SELECT";
                        case "a" -> "INSERT";
                        case "w" -> "UPDATE";
                        case "d" -> "DELETE";
                        default -> "ALL";
                    })
                    .append(" TO ");
            List<String> roles = new ArrayList<>();
            for (String role : row.texts("roles")) {
                roles.add(ctx.grantee(Long.parseLong(role)));
            }
            sql.append(String.join(", ", roles));
            if (row.text("qual") != null) {
                sql.append(" USING (").append(row.text("qual")).append(')');
            }
            if (row.text("with_check") != null) {
                sql.append(" WITH CHECK (").append(row.text("with_check")).append(')');
            }
            steps.add(ScriptContext.step("policy " + row.text("name") + " on " + row.text("tbl"),
                    ctx.definition(sql.toString())));
        }
        return steps;
    }
}
