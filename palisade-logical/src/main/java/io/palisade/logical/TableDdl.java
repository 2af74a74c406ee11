package io.palisade.logical;

import io.palisade.logical.SchemaScript.Step;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Tables: columns with types, collations, defaults, identity (with the identity sequence's name and options) and
 * generated expressions, {@code NOT NULL}, check constraints, inheritance, partitioning (a partition is created
 * {@code PARTITION OF} its parent, or, when its columns are in another order than its parent's because it was attached,
 * created alone and attached, which keeps its column order), storage parameters. Validated check constraints are part
 * of the table; {@code NOT VALID} ones come after the copy. Per-column settings (storage, statistics target,
 * compression, options) and what an inherited column changed from its parent come after all tables. Stateless.
 */
final class TableDdl {
    private TableDdl() {}

    private static final String TABLES = CatalogSql.NAMESPACE + """
            select c.oid, quote_ident(c.relname) as name, c.relkind, c.relispartition,
                case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end as partition_key,
                case when c.relispartition then pg_get_expr(c.relpartbound, c.oid, true) end as partition_bound,
                array(select quote_ident(p.relname) from pg_inherits i join pg_class p on p.oid = i.inhparent
                    where i.inhrelid = c.oid order by i.inhseqno) as parents,
                array(select o.option_name || '=' || quote_literal(o.option_value)
                    from pg_options_to_table(c.reloptions) o) as options,
                array(select 'toast.' || o.option_name || '=' || quote_literal(o.option_value)
                    from pg_class tc, pg_options_to_table(tc.reloptions) o where tc.oid = c.reltoastrelid)
                    as toast_options,
                c.relispartition and array(select a.attname from pg_attribute a where a.attrelid = c.oid
                        and a.attnum > 0 and not a.attisdropped order by a.attnum)
                    is distinct from array(select a.attname from pg_inherits i join pg_attribute a
                        on a.attrelid = i.inhparent where i.inhrelid = c.oid and a.attnum > 0 and not a.attisdropped
                        order by a.attnum) as own_order
            from pg_class c
            where c.relnamespace = (select oid from ns) and c.relkind in ('r', 'p')
            order by c.oid
            """;

    private static final String COLUMNS = CatalogSql.NAMESPACE + """
            select a.attrelid, quote_ident(a.attname) as name, format_type(a.atttypid, a.atttypmod) as type,
                a.attnotnull, a.attislocal, a.attidentity, a.attgenerated,
                pg_get_expr(d.adbin, d.adrelid, true) as default_expr,
                case when a.attcollation <> 0 and a.attcollation <> t.typcollation then %s end as collation,
                (select 'SEQUENCE NAME ' || quote_ident(sc.relname) || ' START WITH ' || s.seqstart
                        || ' INCREMENT BY ' || s.seqincrement || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' || s.seqmax
                        || ' CACHE ' || s.seqcache || case when s.seqcycle then ' CYCLE' else ' NO CYCLE' end
                    from pg_depend sd join pg_class sc on sc.oid = sd.objid join pg_sequence s on s.seqrelid = sc.oid
                    where sd.classid = 'pg_class'::regclass and sd.refclassid = 'pg_class'::regclass
                      and sd.refobjid = a.attrelid and sd.refobjsubid = a.attnum and sd.deptype = 'i')
                    as identity_options,
                coalesce((select bool_or(pa.attnotnull) from pg_inherits i
                    join pg_attribute pa on pa.attrelid = i.inhparent and pa.attname = a.attname
                    where i.inhrelid = a.attrelid), false) as parent_not_null,
                (select pg_get_expr(pd.adbin, pd.adrelid, true) from pg_inherits i
                    join pg_attribute pa on pa.attrelid = i.inhparent and pa.attname = a.attname
                    join pg_attrdef pd on pd.adrelid = pa.attrelid and pd.adnum = pa.attnum
                    where i.inhrelid = a.attrelid order by i.inhseqno limit 1) as parent_default,
                case when a.attstorage <> t.typstorage then a.attstorage end as storage,
                coalesce(a.attstattarget, -1) as stattarget, a.attcompression,
                array(select o.option_name || '=' || quote_literal(o.option_value)
                    from pg_options_to_table(a.attoptions) o) as options
            from pg_attribute a
            join pg_class c on c.oid = a.attrelid
            join pg_type t on t.oid = a.atttypid
            left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where c.relnamespace = (select oid from ns) and c.relkind in ('r', 'p')
              and a.attnum > 0 and not a.attisdropped
            order by a.attrelid, a.attnum
            """.formatted(CatalogSql.collation("a.attcollation"));

    private static final String CHECKS = CatalogSql.NAMESPACE + """
            select k.conrelid, 'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid, true)
                as definition, k.convalidated
            from pg_constraint k join pg_class c on c.oid = k.conrelid
            where c.relnamespace = (select oid from ns) and k.contype = 'c' and k.conislocal
            order by k.conrelid, k.conname
            """;

    /** The tables; adds to {@code settings} what comes after all tables, to {@code afterCopy} what after the copy. */
    static List<Node> tables(ScriptContext ctx, List<Step> settings, List<Step> afterCopy) throws SQLException {
        Map<Long, List<Catalog.Row>> columns = byRelation(ctx.catalog().rows(COLUMNS, ctx.namespace()), "attrelid");
        Map<Long, List<Catalog.Row>> checks = byRelation(ctx.catalog().rows(CHECKS, ctx.namespace()), "conrelid");
        List<Node> nodes = new ArrayList<>();
        for (Catalog.Row table : ctx.catalog().rows(TABLES, ctx.namespace())) {
            long oid = table.number("oid");
            String name = ctx.qualified(table.text("name"));
            String object = "table " + table.text("name");
            List<Catalog.Row> tableColumns = columns.getOrDefault(oid, List.of());
            List<String> validated = new ArrayList<>();
            for (Catalog.Row check : checks.getOrDefault(oid, List.of())) {
                if (check.flag("convalidated")) {
                    validated.add(check.text("definition"));
                } else {
                    afterCopy.add(ScriptContext.step(object,
                            ctx.definition("ALTER TABLE " + name + " ADD " + check.text("definition"))));
                }
            }
            List<Step> steps = new ArrayList<>();
            for (String sql : create(ctx, table, name, tableColumns, validated)) {
                steps.add(ScriptContext.step(object, ctx.definition(sql)));
            }
            nodes.add(new Node("pg_class:" + oid, Node.Kind.TABLE, oid, object, steps));
            for (Catalog.Row column : tableColumns) {
                for (String sql : columnSettings(column)) {
                    settings.add(ScriptContext.step(object + " column " + column.text("name"), ctx.definition(
                            "ALTER TABLE ONLY " + name + " ALTER COLUMN " + column.text("name") + " " + sql)));
                }
            }
        }
        return nodes;
    }

    private static List<String> create(ScriptContext ctx, Catalog.Row table, String name, List<Catalog.Row> columns,
            List<String> checks) {
        List<String> parents = table.texts("parents").stream().map(ctx::qualified).toList();
        boolean partition = table.flag("relispartition");
        boolean standalone = partition && table.flag("own_order");
        StringBuilder sql = new StringBuilder("CREATE TABLE ").append(name);
        if (partition && !standalone) {
            sql.append(" PARTITION OF ").append(parents.getFirst());
            if (!checks.isEmpty()) {
                sql.append(" (\n    ").append(String.join(",\n    ", checks)).append("\n)");
            }
            sql.append(' ').append(table.text("partition_bound"));
        } else {
            List<String> elements = new ArrayList<>();
            for (Catalog.Row column : columns) {
                if (standalone || column.flag("attislocal")) {
                    elements.add(column(column, ctx));
                }
            }
            elements.addAll(checks);
            sql.append(" (").append(elements.isEmpty() ? "" : "\n    " + String.join(",\n    ", elements) + "\n")
                    .append(')');
            if (!partition && !parents.isEmpty()) {
                sql.append(" INHERITS (").append(String.join(", ", parents)).append(')');
            }
        }
        if (table.text("partition_key") != null) {
            sql.append(" PARTITION BY ").append(table.text("partition_key"));
        }
        List<String> options = new ArrayList<>(table.texts("options"));
        options.addAll(table.texts("toast_options"));
        if (!options.isEmpty()) {
            sql.append(" WITH (").append(String.join(", ", options)).append(')');
        }
        if (standalone) {
            return List.of(sql.toString(), "ALTER TABLE " + parents.getFirst() + " ATTACH PARTITION " + name + " "
                    + table.text("partition_bound"));
        }
        return List.of(sql.toString());
    }

    private static String column(Catalog.Row column, ScriptContext ctx) {
        StringBuilder sql = new StringBuilder(column.text("name")).append(' ').append(column.text("type"));
        if (column.text("collation") != null) {
            sql.append(" COLLATE ").append(column.text("collation"));
        }
        String generated = column.text("attgenerated");
        if (generated != null && generated.equals("s")) {
            sql.append(" GENERATED ALWAYS AS (").append(column.text("default_expr")).append(") STORED");
        } else if (column.text("default_expr") != null) {
            sql.append(" DEFAULT ").append(column.text("default_expr"));
        }
        String identity = column.text("attidentity");
        if (identity != null && !identity.isEmpty()) {
            String options = column.text("identity_options");
            sql.append(identity.equals("a") ? " GENERATED ALWAYS AS IDENTITY" : " GENERATED BY DEFAULT AS IDENTITY");
            if (options != null) {
                sql.append(" (").append(qualifySequence(options, ctx)).append(')');
            }
        }
        if (column.flag("attnotnull")) {
            sql.append(" NOT NULL");
        }
        return sql.toString();
    }

    /** {@code SEQUENCE NAME x …} → {@code SEQUENCE NAME <target>.x …}. */
    private static String qualifySequence(String options, ScriptContext ctx) {
        String prefix = "SEQUENCE NAME ";
        int end = options.indexOf(" START WITH ");
        return prefix + ctx.qualified(options.substring(prefix.length(), end)) + options.substring(end);
    }

    private static List<String> columnSettings(Catalog.Row column) {
        List<String> sql = new ArrayList<>();
        if (!column.flag("attislocal")) {
            String generated = column.text("attgenerated");
            String own = column.text("default_expr");
            String inherited = column.text("parent_default");
            if ((generated == null || generated.isEmpty()) && !java.util.Objects.equals(own, inherited)) {
                sql.add(own == null ? "DROP DEFAULT" : "SET DEFAULT " + own);
            }
            if (column.flag("attnotnull") && !column.flag("parent_not_null")) {
                sql.add("SET NOT NULL");
            }
        }
        String storage = column.text("storage");
        if (storage != null) {
            sql.add("SET STORAGE " + switch (storage) {
                case "p" -> "PLAIN";
                case "e" -> "EXTERNAL";
                case "m" -> "MAIN";
                default -> "EXTENDED";
            });
        }
        if (column.number("stattarget") >= 0) {
            sql.add("SET STATISTICS " + column.number("stattarget"));
        }
        String compression = column.text("attcompression");
        if (compression != null && !compression.isEmpty()) {
            sql.add("SET COMPRESSION " + (compression.equals("l") ? "lz4" : "pglz"));
        }
        if (!column.texts("options").isEmpty()) {
            sql.add("SET (" + String.join(", ", column.texts("options")) + ")");
        }
        return sql;
    }

    static Map<Long, List<Catalog.Row>> byRelation(List<Catalog.Row> rows, String column) {
        Map<Long, List<Catalog.Row>> grouped = new HashMap<>();
        for (Catalog.Row row : rows) {
            grouped.computeIfAbsent(row.number(column), k -> new ArrayList<>()).add(row);
        }
        return grouped;
    }
}
