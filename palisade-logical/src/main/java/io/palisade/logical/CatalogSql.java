package io.palisade.logical;

/**
 * SQL shared by the extraction, the refusals and the fingerprint. Each snippet expects a CTE {@code ns(oid)} holding
 * the source namespace's oid (see {@link #NAMESPACE}).
 */
final class CatalogSql {
    private CatalogSql() {}

    /** Start of a query about one namespace: binds its oid once. */
    static final String NAMESPACE = "with recursive ns as (select ?::oid as oid)\n";

    /**
     * {@code objects(classid, objid)}: everything in the namespace that is not part of an extension, with the
     * sub-objects (defaults, constraints, rules, triggers, policies) of its relations.
     */
    static final String OBJECTS = """
            objects(classid, objid) as (
                select o.classid, o.objid from (
                    select 'pg_class'::regclass::oid as classid, c.oid as objid from pg_class c
                        where c.relnamespace = (select oid from ns)
                    union all select 'pg_type'::regclass::oid, t.oid from pg_type t
                        where t.typnamespace = (select oid from ns)
                    union all select 'pg_proc'::regclass::oid, p.oid from pg_proc p
                        where p.pronamespace = (select oid from ns)
                    union all select 'pg_constraint'::regclass::oid, k.oid from pg_constraint k
                        where k.connamespace = (select oid from ns)
                    union all select 'pg_statistic_ext'::regclass::oid, s.oid from pg_statistic_ext s
                        where s.stxnamespace = (select oid from ns)
                    union all select 'pg_attrdef'::regclass::oid, d.oid from pg_attrdef d
                        join pg_class c on c.oid = d.adrelid where c.relnamespace = (select oid from ns)
                    union all select 'pg_rewrite'::regclass::oid, w.oid from pg_rewrite w
                        join pg_class c on c.oid = w.ev_class where c.relnamespace = (select oid from ns)
                    union all select 'pg_trigger'::regclass::oid, g.oid from pg_trigger g
                        join pg_class c on c.oid = g.tgrelid where c.relnamespace = (select oid from ns)
                    union all select 'pg_policy'::regclass::oid, y.oid from pg_policy y
                        join pg_class c on c.oid = y.polrelid where c.relnamespace = (select oid from ns)
                ) o
                where not exists (select 1 from pg_depend e
                    where e.classid = o.classid and e.objid = o.objid and e.deptype = 'e')
            )""";

    /**
     * {@code referenced(classid, objid, refclassid, refobjid)}: what those objects depend on (normal and automatic
     * dependencies), an array type standing for its element type.
     */
    static final String REFERENCED = """
            direct as (
                select d.classid, d.objid, d.refclassid, d.refobjid from pg_depend d
                join objects o on o.classid = d.classid and o.objid = d.objid
                where d.deptype in ('n', 'a')
            ),
            referenced(classid, objid, refclassid, refobjid) as (
                select classid, objid, refclassid, refobjid from direct
                union
                select r.classid, r.objid, 'pg_type'::regclass::oid, t.typelem from direct r
                join pg_type t on t.oid = r.refobjid
                where r.refclassid = 'pg_type'::regclass and t.typelem <> 0
                  and t.typsubscript = 'array_subscript_handler'::regproc
            )""";

    /** The SQL text of a collation's qualified name, for collation oid expression {@code oid}. */
    static String collation(String oid) {
        return "(select quote_ident(cn.nspname) || '.' || quote_ident(co.collname) from pg_collation co"
                + " join pg_namespace cn on cn.oid = co.collnamespace where co.oid = " + oid + ")";
    }

    /** Whether object {@code classid}/{@code objid} was created along with another one (array, rowtype, …). */
    static String internal(String classid, String objid) {
        return "exists (select 1 from pg_depend i where i.classid = " + classid + " and i.objid = " + objid
                + " and i.deptype = 'i' and i.refobjid <> i.objid)";
    }

    /** The namespace's objects that have an owner of their own: (classid, objid, owner). Needs {@link #NAMESPACE}. */
    static final String OWNED_IN_NAMESPACE = """
            select 'pg_class'::regclass::oid as classid, c.oid as objid, c.relowner as owner from pg_class c
                where c.relnamespace = (select oid from ns) and c.relkind not in ('i', 'I', 't')
            union all select 'pg_type'::regclass::oid, t.oid, t.typowner from pg_type t
                where t.typnamespace = (select oid from ns)
            union all select 'pg_proc'::regclass::oid, p.oid, p.proowner from pg_proc p
                where p.pronamespace = (select oid from ns)
            union all select 'pg_statistic_ext'::regclass::oid, s.oid, s.stxowner from pg_statistic_ext s
                where s.stxnamespace = (select oid from ns)
            """;
}
