package io.palisade.logical;

import io.palisade.logical.SchemaScript.Step;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * Comments on the namespace's objects and their parts: relations and their columns, types and domains, routines,
 * table and domain constraints, triggers, policies, extended statistics. A comment on the namespace itself is left out
 * (the target's namespace belongs to the rung). Stateless.
 */
final class CommentDdl {
    private CommentDdl() {}

    private static final String COMMENTS = CatalogSql.NAMESPACE + """
            select x.target, x.object, quote_literal(d.description) as comment
            from pg_description d
            join (
                select 'pg_class'::regclass::oid as classoid, c.oid as objoid, 0 as objsubid,
                    case c.relkind when 'v' then 'VIEW ' when 'm' then 'MATERIALIZED VIEW ' when 'S' then 'SEQUENCE '
                        when 'i' then 'INDEX ' when 'I' then 'INDEX ' else 'TABLE ' end as target,
                    quote_ident(c.relname) as object, 0 as sort
                    from pg_class c where c.relnamespace = (select oid from ns) and c.relkind <> 'c'
                union all
                select 'pg_class'::regclass::oid, c.oid, a.attnum, 'COLUMN ', quote_ident(c.relname) || '.'
                    || quote_ident(a.attname), 1
                    from pg_class c join pg_attribute a on a.attrelid = c.oid
                    where c.relnamespace = (select oid from ns) and a.attnum > 0 and not a.attisdropped
                union all
                select 'pg_type'::regclass::oid, t.oid, 0, case when t.typtype = 'd' then 'DOMAIN ' else 'TYPE ' end,
                    quote_ident(t.typname), 0
                    from pg_type t where t.typnamespace = (select oid from ns)
                union all
                select 'pg_proc'::regclass::oid, p.oid, 0,
                    case when p.prokind = 'p' then 'PROCEDURE ' else 'FUNCTION ' end,
                    quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')', 0
                    from pg_proc p where p.pronamespace = (select oid from ns)
                union all
                select 'pg_constraint'::regclass::oid, k.oid, 0, 'CONSTRAINT ' || quote_ident(k.conname) || ' ON '
                    || case when k.contypid <> 0 then 'DOMAIN ' else '' end,
                    quote_ident(coalesce(c.relname, t.typname)), 2
                    from pg_constraint k left join pg_class c on c.oid = k.conrelid
                    left join pg_type t on t.oid = k.contypid
                    where k.connamespace = (select oid from ns)
                union all
                select 'pg_trigger'::regclass::oid, g.oid, 0, 'TRIGGER ' || quote_ident(g.tgname) || ' ON ',
                    quote_ident(c.relname), 2
                    from pg_trigger g join pg_class c on c.oid = g.tgrelid where c.relnamespace = (select oid from ns)
                union all
                select 'pg_policy'::regclass::oid, y.oid, 0, 'POLICY ' || quote_ident(y.polname) || ' ON ',
                    quote_ident(c.relname), 2
                    from pg_policy y join pg_class c on c.oid = y.polrelid where c.relnamespace = (select oid from ns)
                union all
                select 'pg_statistic_ext'::regclass::oid, s.oid, 0, 'STATISTICS ', quote_ident(s.stxname), 0
                    from pg_statistic_ext s where s.stxnamespace = (select oid from ns)
            ) x on x.classoid = d.classoid and x.objoid = d.objoid and x.objsubid = d.objsubid
            where not exists (select 1 from pg_depend e where e.classid = d.classoid and e.objid = d.objoid
                and e.deptype = 'e')
            order by x.sort, x.target, x.object
            """;

    static List<Step> steps(ScriptContext ctx) throws SQLException {
        List<Step> steps = new ArrayList<>();
        for (Catalog.Row row : ctx.catalog().rows(COMMENTS, ctx.namespace())) {
            String target = row.text("target");
            String object = target.toLowerCase(java.util.Locale.ROOT) + row.text("object");
            steps.add(ScriptContext.step("comment on " + object,
                    "COMMENT ON " + target + ctx.qualified(row.text("object")) + " IS " + row.text("comment")));
        }
        return steps;
    }
}
