package io.palisade.logical;

import java.util.List;

/**
 * The catalog queries of a {@link Fingerprint}, each returning rows of {@code (key, value)}. They bind the namespace's
 * oid and the tenant role's oid; the role reads as {@code <tenant>}. Written apart from the extraction's queries on
 * purpose, so that the fingerprint checks the extraction rather than repeats it.
 */
final class FingerprintQueries {
    private FingerprintQueries() {}

    static final String PREFIX = CatalogSql.NAMESPACE + ", role as (select ?::oid as oid),\n" + CatalogSql.OBJECTS
            + ",\n" + "who(oid, name) as (select r.oid, case when r.oid = (select oid from role) then '<tenant>'"
            + " else r.rolname end from pg_roles r union all select 0, 'PUBLIC')\n";

    private static final String MINE = "exists (select 1 from objects o where o.classid = '%s'::regclass"
            + " and o.objid = %s)";

    static final List<String> STRUCTURE = List.of(
            """
            select 'type ' || quote_ident(t.typname) as key, concat_ws(' | ', t.typtype,
                (select string_agg(quote_literal(e.enumlabel), ',' order by e.enumsortorder) from pg_enum e
                    where e.enumtypid = t.oid),
                (select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' '
                    || a.attcollation::regcollation::text, ',' order by a.attnum) from pg_attribute a
                    where t.typtype = 'c' and a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped),
                case when t.typtype = 'd' then format_type(t.typbasetype, t.typtypmod) end,
                case when t.typtype = 'd' then t.typcollation::regcollation::text end,
                'default ' || pg_get_expr(t.typdefaultbin, 0, true), case when t.typnotnull then 'not null' end,
                (select format_type(r.rngsubtype, null) || ' '
                    || (select o.opcname from pg_opclass o where o.oid = r.rngsubopc) || ' '
                    || r.rngcollation::regcollation::text || ' ' || r.rngsubdiff::regproc::text || ' '
                    || format_type(r.rngmultitypid, null) from pg_range r where r.rngtypid = t.oid)) as value
            from pg_type t
            where t.typnamespace = (select oid from ns) and %s
              and not exists (select 1 from pg_depend i where i.classid = 'pg_type'::regclass and i.objid = t.oid
                  and i.deptype = 'i' and i.refobjid <> i.objid)
            """.formatted(MINE.formatted("pg_type", "t.oid")),
            """
            select 'relation ' || quote_ident(c.relname) as key, concat_ws(' | ', c.relkind, c.relpersistence,
                am.amname, array_to_string(c.reloptions, ','),
                (select array_to_string(tc.reloptions, ',') from pg_class tc where tc.oid = c.reltoastrelid),
                case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end,
                case when c.relispartition then pg_get_expr(c.relpartbound, c.oid, true) end,
                (select 'inherits ' || string_agg(p.relname, ',' order by i.inhseqno) from pg_inherits i
                    join pg_class p on p.oid = i.inhparent where i.inhrelid = c.oid),
                'replica identity ' || c.relreplident::text, 'rls ' || c.relrowsecurity || ' ' || c.relforcerowsecurity,
                case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid, true) end,
                case when c.relkind = 'm' then 'populated ' || c.relispopulated end) as value
            from pg_class c left join pg_am am on am.oid = c.relam
            where c.relnamespace = (select oid from ns) and c.relkind not in ('i', 'I', 't') and %s
            """.formatted(MINE.formatted("pg_class", "c.oid")),
            """
            select 'column ' || quote_ident(c.relname) || '.' || quote_ident(a.attname) as key, concat_ws(' | ',
                row_number() over (partition by a.attrelid order by a.attnum), format_type(a.atttypid, a.atttypmod),
                case when a.attnotnull then 'not null' end, 'default ' || pg_get_expr(d.adbin, d.adrelid, true),
                'identity ' || nullif(a.attidentity::text, ''), 'generated ' || nullif(a.attgenerated::text, ''),
                a.attcollation::regcollation::text, 'storage ' || a.attstorage::text,
                'statistics ' || coalesce(a.attstattarget, -1), 'compression ' || nullif(a.attcompression::text, ''),
                array_to_string(a.attoptions, ','),
                case when not c.relispartition then 'local ' || a.attislocal end, 'inherited ' || a.attinhcount)
                as value
            from pg_attribute a join pg_class c on c.oid = a.attrelid
            left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where c.relnamespace = (select oid from ns) and c.relkind not in ('i', 'I', 't', 'S')
              and a.attnum > 0 and not a.attisdropped and %s
            """.formatted(MINE.formatted("pg_class", "c.oid")),
            """
            select 'constraint ' || coalesce(quote_ident(c.relname), quote_ident(t.typname)) || '.'
                    || quote_ident(k.conname) as key,
                concat_ws(' | ', k.contype, pg_get_constraintdef(k.oid, true), 'local ' || k.conislocal,
                    'inherited ' || k.coninhcount, 'has parent ' || (k.conparentid <> 0)) as value
            from pg_constraint k left join pg_class c on c.oid = k.conrelid left join pg_type t on t.oid = k.contypid
            where k.connamespace = (select oid from ns) and %s
            """.formatted(MINE.formatted("pg_constraint", "k.oid")),
            """
            select 'index ' || quote_ident(ic.relname) as key, concat_ws(' | ', pg_get_indexdef(i.indexrelid, 0, true),
                'valid ' || i.indisvalid, 'clustered ' || i.indisclustered, 'replica identity ' || i.indisreplident,
                (select 'partition of ' || p.relname from pg_inherits h join pg_class p on p.oid = h.inhparent
                    where h.inhrelid = ic.oid)) as value
            from pg_index i join pg_class ic on ic.oid = i.indexrelid
            where ic.relnamespace = (select oid from ns) and %s
            """.formatted(MINE.formatted("pg_class", "i.indrelid")),
            """
            select 'sequence ' || quote_ident(c.relname) as key, concat_ws(' | ', format_type(s.seqtypid, null),
                s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                (select 'owned by ' || d.deptype::text || ' ' || t.relname || '.' || a.attname from pg_depend d
                    join pg_class t on t.oid = d.refobjid
                    join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                    where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.refclassid = 'pg_class'::regclass
                      and d.deptype in ('a', 'i'))) as value
            from pg_class c join pg_sequence s on s.seqrelid = c.oid
            where c.relnamespace = (select oid from ns) and %s
            """.formatted(MINE.formatted("pg_class", "c.oid")),
            """
            select 'trigger ' || quote_ident(c.relname) || '.' || quote_ident(g.tgname) as key,
                concat_ws(' | ', pg_get_triggerdef(g.oid, true), 'enabled ' || g.tgenabled::text,
                    'clone ' || (g.tgparentid <> 0)) as value
            from pg_trigger g join pg_class c on c.oid = g.tgrelid
            where c.relnamespace = (select oid from ns) and not g.tgisinternal and %s
            """.formatted(MINE.formatted("pg_trigger", "g.oid")),
            """
            select 'policy ' || quote_ident(c.relname) || '.' || quote_ident(y.polname) as key,
                concat_ws(' | ', y.polcmd, y.polpermissive,
                    (select string_agg(w.name, ',' order by w.name) from unnest(y.polroles) r
                        join who w on w.oid = r),
                    'using ' || pg_get_expr(y.polqual, y.polrelid, true),
                    'check ' || pg_get_expr(y.polwithcheck, y.polrelid, true)) as value
            from pg_policy y join pg_class c on c.oid = y.polrelid
            where c.relnamespace = (select oid from ns)
            """,
            """
            select 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) as key, d.description as value
            from pg_description d join objects o on o.classid = d.classoid and o.objid = d.objoid
            """,
            """
            select 'acl ' || x.object as key, string_agg(w.name || ':' || a.privilege_type || ':' || a.is_grantable,
                ',' order by w.name, a.privilege_type) as value
            from (
                select pg_describe_object('pg_class'::regclass, c.oid, 0) as object,
                    coalesce(c.relacl, acldefault((case when c.relkind = 'S' then 's' else 'r' end)::"char",
                        c.relowner)) as acl
                    from pg_class c
                    where c.relnamespace = (select oid from ns) and c.relkind not in ('i', 'I', 't', 'c')
                      and %s
                union all
                select pg_describe_object('pg_class'::regclass, c.oid, a.attnum), a.attacl
                    from pg_class c join pg_attribute a on a.attrelid = c.oid
                    where c.relnamespace = (select oid from ns) and a.attacl is not null and not a.attisdropped
                union all
                select pg_describe_object('pg_proc'::regclass, p.oid, 0),
                    coalesce(p.proacl, acldefault('f'::"char", p.proowner))
                    from pg_proc p where p.pronamespace = (select oid from ns) and %s
                      and not exists (select 1 from pg_depend i where i.classid = 'pg_proc'::regclass
                          and i.objid = p.oid and i.deptype = 'i' and i.refobjid <> i.objid)
                union all
                select pg_describe_object('pg_type'::regclass, t.oid, 0),
                    coalesce(t.typacl, acldefault('T'::"char", t.typowner))
                    from pg_type t where t.typnamespace = (select oid from ns) and %s
                      and not exists (select 1 from pg_depend i where i.classid = 'pg_type'::regclass
                          and i.objid = t.oid and i.deptype = 'i' and i.refobjid <> i.objid)
            ) x, aclexplode(x.acl) a join who w on w.oid = a.grantee
            group by x.object
            """.formatted(MINE.formatted("pg_class", "c.oid"), MINE.formatted("pg_proc", "p.oid"),
                    MINE.formatted("pg_type", "t.oid")),
            """
            select 'owner ' || pg_describe_object(x.classid, x.objid, 0) as key, w.name as value
            from (
            """ + CatalogSql.OWNED_IN_NAMESPACE + """
            ) x join objects o on o.classid = x.classid and o.objid = x.objid join who w on w.oid = x.owner
            where not exists (select 1 from pg_depend i where i.classid = x.classid and i.objid = x.objid
                and i.deptype = 'i' and i.refobjid <> i.objid)
            """,
            """
            select 'default privileges ' || case when d.defaclnamespace = 0 then 'global' else 'in schema' end
                    || ' ' || d.defaclobjtype::text as key,
                string_agg(w.name || ':' || a.privilege_type || ':' || a.is_grantable, ','
                    order by w.name, a.privilege_type) as value
            from pg_default_acl d, aclexplode(d.defaclacl) a join who w on w.oid = a.grantee
            where d.defaclrole = (select oid from role) and d.defaclnamespace in (0, (select oid from ns))
            group by d.defaclnamespace, d.defaclobjtype
            """);

    /** Routines: key, the definition (normalised in Java) and the {@code search_path} it sets, if any. */
    static final String ROUTINES = """
            select 'routine ' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')'
                    as key, pg_get_functiondef(p.oid) as definition,
                (select o.option_value from pg_options_to_table(p.proconfig) o where o.option_name = 'search_path')
                    as search_path
            from pg_proc p
            where p.pronamespace = (select oid from ns) and p.prokind <> 'a' and %s
              and not exists (select 1 from pg_depend i where i.classid = 'pg_proc'::regclass and i.objid = p.oid
                  and i.deptype = 'i' and i.refobjid <> i.objid)
            """.formatted(MINE.formatted("pg_proc", "p.oid"));

    /** Extended statistics: key and the definition (normalised in Java). */
    static final String STATISTICS = """
            select 'statistics ' || quote_ident(s.stxname) as key, pg_get_statisticsobjdef(s.oid) || ' | '
                || coalesce(s.stxstattarget, -1) as definition
            from pg_statistic_ext s where s.stxnamespace = (select oid from ns)
            """;

    /** Relations whose rows are compared: tables (each level of inheritance alone) and populated materialized views. */
    static final String DATA = """
            select quote_ident(c.relname) as name from pg_class c
            where c.relnamespace = (select oid from ns) and (c.relkind = 'r' or (c.relkind = 'm' and c.relispopulated))
              and %s
            order by c.relname
            """.formatted(MINE.formatted("pg_class", "c.oid"));

    static final String SEQUENCE_VALUES = """
            select 'data sequence ' || quote_ident(c.relname) as key,
                coalesce(pg_sequence_last_value(c.oid)::text, 'not called') as value
            from pg_class c where c.relnamespace = (select oid from ns) and c.relkind = 'S'
            """;
}
