package io.palisade.logical;

import io.palisade.logical.SchemaScript.Step;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * Enum, composite, domain and range types, and standalone sequences (not those of identity columns, which their table
 * creates). A domain's {@code NOT VALID} constraints come after the copy; a sequence's {@code OWNED BY} after the
 * tables. Stateless.
 */
final class TypeDdl {
    private TypeDdl() {}

    private static final String TYPES = CatalogSql.NAMESPACE + """
            select t.oid, t.typtype, quote_ident(t.typname) as name,
                (select string_agg(quote_literal(e.enumlabel), ', ' order by e.enumsortorder)
                    from pg_enum e where e.enumtypid = t.oid) as labels,
                (select string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                        || case when a.attcollation <> 0 and a.attcollation <> at.typcollation
                            then ' COLLATE ' || %s else '' end, ', ' order by a.attnum)
                    from pg_attribute a join pg_type at on at.oid = a.atttypid
                    where t.typtype = 'c' and a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped)
                    as attributes,
                format_type(t.typbasetype, t.typtypmod) as base,
                case when t.typcollation <> 0 and t.typcollation <> bt.typcollation then %s end as collation,
                pg_get_expr(t.typdefaultbin, 0, true) as default_expr, t.typnotnull,
                array(select 'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid, true)
                    from pg_constraint k where k.contypid = t.oid and k.contype = 'c' and k.convalidated
                    order by k.conname) as checks,
                array(select 'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid, true)
                    from pg_constraint k where k.contypid = t.oid and k.contype = 'c' and not k.convalidated
                    order by k.conname) as unvalidated,
                format_type(r.rngsubtype, null) as subtype,
                case when not oc.opcdefault then case when pg_opclass_is_visible(oc.oid) then quote_ident(oc.opcname)
                    else quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname) end end as subtype_opclass,
                case when r.rngcollation <> 0 and r.rngcollation <> st.typcollation then %s end as range_collation,
                case when r.rngsubdiff <> 0 then r.rngsubdiff::regproc::text end as subtype_diff,
                quote_ident(mt.typname) as multirange
            from pg_type t
            left join pg_type bt on bt.oid = t.typbasetype
            left join pg_range r on r.rngtypid = t.oid
            left join pg_type st on st.oid = r.rngsubtype
            left join pg_type mt on mt.oid = r.rngmultitypid
            left join pg_opclass oc on oc.oid = r.rngsubopc
            left join pg_namespace ocn on ocn.oid = oc.opcnamespace
            where t.typnamespace = (select oid from ns) and t.typtype in ('e', 'c', 'd', 'r')
              and (t.typtype <> 'c' or (select c.relkind from pg_class c where c.oid = t.typrelid) = 'c')
              and not exists (select 1 from pg_depend e where e.classid = 'pg_type'::regclass and e.objid = t.oid
                  and (e.deptype = 'e' or e.deptype = 'i' and e.refobjid <> e.objid))
            order by t.oid
            """.formatted(CatalogSql.collation("a.attcollation"), CatalogSql.collation("t.typcollation"),
                    CatalogSql.collation("r.rngcollation"));

    private static final String SEQUENCES = CatalogSql.NAMESPACE + """
            select c.oid, quote_ident(c.relname) as name, format_type(s.seqtypid, null) as type, s.seqstart,
                s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                (select quote_ident(t.relname) || '.' || quote_ident(a.attname) from pg_depend d
                    join pg_class t on t.oid = d.refobjid
                    join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                    where d.classid = 'pg_class'::regclass and d.objid = c.oid
                      and d.refclassid = 'pg_class'::regclass and d.deptype = 'a') as owned_by
            from pg_class c join pg_sequence s on s.seqrelid = c.oid
            where c.relnamespace = (select oid from ns) and c.relkind = 'S'
              and not exists (select 1 from pg_depend i where i.classid = 'pg_class'::regclass and i.objid = c.oid
                  and i.deptype = 'i' and i.refobjid <> i.objid)
            order by c.oid
            """;

    static List<Node> types(ScriptContext ctx, List<Step> afterCopy) throws SQLException {
        List<Node> nodes = new ArrayList<>();
        for (Catalog.Row row : ctx.catalog().rows(TYPES, ctx.namespace())) {
            String name = ctx.qualified(row.text("name"));
            String kind = row.text("typtype");
            String object = (kind.equals("d") ? "domain " : "type ") + row.text("name");
            String sql = switch (kind) {
                case "e" -> "CREATE TYPE " + name + " AS ENUM (" + nullToEmpty(row.text("labels")) + ")";
                case "c" -> "CREATE TYPE " + name + " AS (" + nullToEmpty(row.text("attributes")) + ")";
                case "d" -> domain(name, row);
                case "r" -> range(name, row);
                default -> throw new IllegalStateException("unexpected type kind " + kind);
            };
            nodes.add(new Node("pg_type:" + row.number("oid"), Node.Kind.TYPE, row.number("oid"), object,
                    List.of(ScriptContext.step(object, ctx.definition(sql)))));
            for (String constraint : row.texts("unvalidated")) {
                afterCopy.add(ScriptContext.step(object,
                        ctx.definition("ALTER DOMAIN " + name + " ADD " + constraint)));
            }
        }
        return nodes;
    }

    private static String domain(String name, Catalog.Row row) {
        StringBuilder sql = new StringBuilder("CREATE DOMAIN ").append(name).append(" AS ").append(row.text("base"));
        if (row.text("collation") != null) {
            sql.append(" COLLATE ").append(row.text("collation"));
        }
        if (row.text("default_expr") != null) {
            sql.append(" DEFAULT ").append(row.text("default_expr"));
        }
        if (row.flag("typnotnull")) {
            sql.append(" NOT NULL");
        }
        for (String check : row.texts("checks")) {
            sql.append(' ').append(check);
        }
        return sql.toString();
    }

    private static String range(String name, Catalog.Row row) {
        StringBuilder sql = new StringBuilder("CREATE TYPE ").append(name).append(" AS RANGE (SUBTYPE = ")
                .append(row.text("subtype"));
        if (row.text("subtype_opclass") != null) {
            sql.append(", SUBTYPE_OPCLASS = ").append(row.text("subtype_opclass"));
        }
        if (row.text("range_collation") != null) {
            sql.append(", COLLATION = ").append(row.text("range_collation"));
        }
        if (row.text("subtype_diff") != null) {
            sql.append(", SUBTYPE_DIFF = ").append(row.text("subtype_diff"));
        }
        return sql.append(", MULTIRANGE_TYPE_NAME = ").append(row.text("multirange")).append(')').toString();
    }

    static List<Node> sequences(ScriptContext ctx, List<Step> ownership) throws SQLException {
        List<Node> nodes = new ArrayList<>();
        for (Catalog.Row row : ctx.catalog().rows(SEQUENCES, ctx.namespace())) {
            String name = ctx.qualified(row.text("name"));
            String object = "sequence " + row.text("name");
            String sql = "CREATE SEQUENCE " + name + " AS " + row.text("type") + " INCREMENT BY "
                    + row.number("seqincrement") + " MINVALUE " + row.number("seqmin") + " MAXVALUE "
                    + row.number("seqmax") + " START WITH " + row.number("seqstart") + " CACHE "
                    + row.number("seqcache") + (row.flag("seqcycle") ? " CYCLE" : " NO CYCLE");
            nodes.add(new Node("pg_class:" + row.number("oid"), Node.Kind.SEQUENCE, row.number("oid"), object,
                    List.of(ScriptContext.step(object, sql))));
            if (row.text("owned_by") != null) {
                ownership.add(ScriptContext.step(object,
                        "ALTER SEQUENCE " + name + " OWNED BY " + ctx.qualified(row.text("owned_by"))));
            }
        }
        return nodes;
    }

    private static String nullToEmpty(String text) {
        return text == null ? "" : text;
    }
}
