package io.palisade.logical;

import io.palisade.logical.SchemaScript.Step;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Views and materialized views as {@code pg_get_viewdef} gives them, with their options ({@code security_barrier},
 * {@code check_option}, {@code security_invoker}, storage parameters) and column defaults. A materialized view is
 * created {@code WITH NO DATA} and refreshed after the copy if the source's is populated. Stateless.
 */
final class ViewDdl {
    private ViewDdl() {}

    private static final String VIEWS = CatalogSql.NAMESPACE + """
            select c.oid, quote_ident(c.relname) as name, c.relkind, c.relispopulated,
                pg_get_viewdef(c.oid, true) as definition,
                array(select o.option_name || '=' || quote_literal(o.option_value)
                    from pg_options_to_table(c.reloptions) o) as options,
                array(select 'ALTER COLUMN ' || quote_ident(a.attname) || ' SET DEFAULT '
                        || pg_get_expr(d.adbin, d.adrelid, true)
                    from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
                    where d.adrelid = c.oid order by a.attnum) as defaults
            from pg_class c
            where c.relnamespace = (select oid from ns) and c.relkind in ('v', 'm')
            order by c.oid
            """;

    /** Adds to {@code refreshes} the refresh of each populated materialized view, by node key. */
    static List<Node> views(ScriptContext ctx, Map<String, Step> refreshes) throws SQLException {
        List<Node> nodes = new ArrayList<>();
        for (Catalog.Row row : ctx.catalog().rows(VIEWS, ctx.namespace())) {
            boolean materialized = row.text("relkind").equals("m");
            String name = ctx.qualified(row.text("name"));
            String object = (materialized ? "materialized view " : "view ") + row.text("name");
            String definition = row.text("definition").strip();
            if (definition.endsWith(";")) {
                definition = definition.substring(0, definition.length() - 1);
            }
            List<String> options = row.texts("options");
            String sql = "CREATE " + (materialized ? "MATERIALIZED VIEW " : "VIEW ") + name
                    + (options.isEmpty() ? "" : " WITH (" + String.join(", ", options) + ")") + " AS\n" + definition
                    + (materialized ? "\nWITH NO DATA" : "");
            List<Step> steps = new ArrayList<>();
            steps.add(ScriptContext.step(object, ctx.definition(sql)));
            for (String alter : row.texts("defaults")) {
                steps.add(ScriptContext.step(object, ctx.definition("ALTER VIEW " + name + " " + alter)));
            }
            nodes.add(new Node("pg_class:" + row.number("oid"), Node.Kind.VIEW, row.number("oid"), object, steps));
            if (materialized && row.flag("relispopulated")) {
                refreshes.put("pg_class:" + row.number("oid"),
                        ScriptContext.step(object, "REFRESH MATERIALIZED VIEW " + name));
            }
        }
        return nodes;
    }
}
