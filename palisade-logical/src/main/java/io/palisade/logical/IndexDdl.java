package io.palisade.logical;

import io.palisade.logical.SchemaScript.Step;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * What comes after the tables and views, in this order: primary key, unique and exclusion constraints; other indexes
 * (expression, partial, any access method and operator class, as {@code pg_get_indexdef} gives them); partitions'
 * indexes attached to their parents' (each partition's own index and constraint are created with their own names, as
 * on the source, then attached); {@code CLUSTER ON} and {@code REPLICA IDENTITY}; foreign keys (after every unique
 * index they may reference, with their deferrable flags); extended statistics. A partition's foreign keys, and the
 * clones of a foreign key that references a partitioned table, are created by PostgreSQL with the parent's. Stateless.
 */
final class IndexDdl {
    private IndexDdl() {}

    private static final String DEPTH = "(select count(*) from pg_partition_ancestors(c.oid))";

    private static final String KEYS = CatalogSql.NAMESPACE + """
            select quote_ident(c.relname) as tbl, quote_ident(k.conname) as name, pg_get_constraintdef(k.oid, true)
                as definition
            from pg_constraint k join pg_class c on c.oid = k.conrelid
            where c.relnamespace = (select oid from ns) and k.contype in ('p', 'u', 'x')
            order by %s, c.oid, k.conname
            """.formatted(DEPTH);

    private static final String INDEXES = CatalogSql.NAMESPACE + """
            select quote_ident(ic.relname) as name, pg_get_indexdef(i.indexrelid, 0, true) as definition
            from pg_index i join pg_class c on c.oid = i.indrelid join pg_class ic on ic.oid = i.indexrelid
            where c.relnamespace = (select oid from ns)
              and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid
                  and k.conrelid = i.indrelid and k.contype in ('p', 'u', 'x'))
            order by %s, c.oid, ic.relname
            """.formatted(DEPTH);

    private static final String ATTACHED = CatalogSql.NAMESPACE + """
            select quote_ident(pi.relname) as parent, quote_ident(ci.relname) as child
            from pg_inherits h join pg_class ci on ci.oid = h.inhrelid join pg_class pi on pi.oid = h.inhparent
            join pg_index i on i.indexrelid = ci.oid join pg_class c on c.oid = i.indrelid
            where ci.relnamespace = (select oid from ns) and ci.relkind in ('i', 'I')
            order by %s desc, ci.relname
            """.formatted(DEPTH);

    private static final String TABLE_SETTINGS = CatalogSql.NAMESPACE + """
            select quote_ident(c.relname) as tbl, c.relreplident,
                (select quote_ident(ic.relname) from pg_index i join pg_class ic on ic.oid = i.indexrelid
                    where i.indrelid = c.oid and i.indisreplident) as identity_index,
                (select quote_ident(ic.relname) from pg_index i join pg_class ic on ic.oid = i.indexrelid
                    where i.indrelid = c.oid and i.indisclustered) as cluster_index
            from pg_class c
            where c.relnamespace = (select oid from ns) and c.relkind in ('r', 'p', 'm')
            order by c.oid
            """;

    private static final String FOREIGN_KEYS = CatalogSql.NAMESPACE + """
            select quote_ident(c.relname) as tbl, quote_ident(k.conname) as name, pg_get_constraintdef(k.oid, true)
                as definition
            from pg_constraint k join pg_class c on c.oid = k.conrelid
            where c.relnamespace = (select oid from ns) and k.contype = 'f' and k.conparentid = 0
            order by c.oid, k.conname
            """;

    private static final String STATISTICS = CatalogSql.NAMESPACE + """
            select quote_ident(s.stxname) as name, pg_get_statisticsobjdef(s.oid) as definition,
                coalesce(s.stxstattarget, -1) as target
            from pg_statistic_ext s
            where s.stxnamespace = (select oid from ns)
            order by s.oid
            """;

    static List<Step> steps(ScriptContext ctx) throws SQLException {
        Catalog catalog = ctx.catalog();
        List<Step> steps = new ArrayList<>();
        for (Catalog.Row row : catalog.rows(KEYS, ctx.namespace())) {
            steps.add(ScriptContext.step("constraint " + row.text("name") + " on " + row.text("tbl"),
                    ctx.definition("ALTER TABLE ONLY " + ctx.qualified(row.text("tbl")) + " ADD CONSTRAINT "
                            + row.text("name") + " " + row.text("definition"))));
        }
        for (Catalog.Row row : catalog.rows(INDEXES, ctx.namespace())) {
            steps.add(ScriptContext.step("index " + row.text("name"), ctx.definition(row.text("definition"))));
        }
        for (Catalog.Row row : catalog.rows(ATTACHED, ctx.namespace())) {
            steps.add(ScriptContext.step("index " + row.text("child"), "ALTER INDEX "
                    + ctx.qualified(row.text("parent")) + " ATTACH PARTITION " + ctx.qualified(row.text("child"))));
        }
        for (Catalog.Row row : catalog.rows(TABLE_SETTINGS, ctx.namespace())) {
            String table = ctx.qualified(row.text("tbl"));
            String object = "table " + row.text("tbl");
            if (row.text("cluster_index") != null) {
                steps.add(ScriptContext.step(object,
                        "ALTER TABLE ONLY " + table + " CLUSTER ON " + row.text("cluster_index")));
            }
            String identity = switch (row.text("relreplident")) {
                case "n" -> "NOTHING";
                case "f" -> "FULL";
                case "i" -> "USING INDEX " + row.text("identity_index");
                default -> null;
            };
            if (identity != null) {
                steps.add(ScriptContext.step(object, "ALTER TABLE ONLY " + table + " REPLICA IDENTITY " + identity));
            }
        }
        for (Catalog.Row row : catalog.rows(FOREIGN_KEYS, ctx.namespace())) {
            steps.add(ScriptContext.step("constraint " + row.text("name") + " on " + row.text("tbl"),
                    ctx.definition("ALTER TABLE " + ctx.qualified(row.text("tbl")) + " ADD CONSTRAINT "
                            + row.text("name") + " " + row.text("definition"))));
        }
        for (Catalog.Row row : catalog.rows(STATISTICS, ctx.namespace())) {
            String object = "statistics " + row.text("name");
            steps.add(ScriptContext.step(object, ctx.definition(row.text("definition"))));
            if (row.number("target") >= 0) {
                steps.add(ScriptContext.step(object, "ALTER STATISTICS " + ctx.qualified(row.text("name"))
                        + " SET STATISTICS " + row.number("target")));
            }
        }
        return steps;
    }
}
