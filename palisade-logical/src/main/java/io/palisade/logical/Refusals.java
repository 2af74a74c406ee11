package io.palisade.logical;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Finds, before a move starts, everything of a tenant that the logical path cannot take along, each object named (as
 * {@code pg_describe_object} names it) with the reason and what to do:
 * <ul>
 *   <li>large objects owned by the tenant's role (they belong to no schema and logical replication does not copy
 *       them);</li>
 *   <li>unlogged tables and sequences (logical replication cannot copy them: they are not in the WAL), foreign
 *       tables, typed tables, tables of another access method or tablespace, invalid indexes;</li>
 *   <li>kinds this extraction does not reproduce: rules, aggregates, C and internal functions, base types, operators,
 *       operator classes and families, collations, conversions, text search objects, casts, security labels;</li>
 *   <li>objects in the namespace owned by another role, and objects the role owns outside it (other schemas, event
 *       triggers, publications, …); event triggers that call the namespace's functions;</li>
 *   <li>privileges, default privileges and policies that name a role other than the tenant's and PUBLIC;</li>
 *   <li>dependencies on objects outside the namespace other than the system catalog and extensions.</li>
 * </ul>
 * The connection must be a superuser's (or read the whole catalog) and outside a transaction. Stateless.
 */
public final class Refusals {
    private Refusals() {}

    private static final String PREFIX = CatalogSql.NAMESPACE + ", role as (select ?::oid as oid),\n"
            + CatalogSql.OBJECTS + ",\n" + CatalogSql.REFERENCED + "\n";

    private record Check(String sql, String reason) {}

    private static final List<Check> CHECKS = List.of(
            new Check("select 'large object ' || l.oid as object from pg_largeobject_metadata l"
                    + " where l.lomowner = (select oid from role) order by l.oid",
                    "large objects belong to no schema and logical replication does not copy them; keep the data in a"
                    + " bytea column instead, or remove it with lo_unlink()"),
            new Check(relations("c.relpersistence = 'u' and c.relkind in ('r', 'p', 'S', 'm')"),
                    "unlogged relations are not written to the WAL, so logical replication cannot copy them; make it"
                    + " logged (ALTER TABLE/SEQUENCE … SET LOGGED) or drop it"),
            new Check(relations("c.relkind = 'f'"),
                    "a foreign table's data lives on another server and its server and user mapping do not move;"
                    + " drop it before the move and recreate it afterwards"),
            new Check(relations("c.reloftype <> 0"),
                    "typed tables (CREATE TABLE … OF type) are not reproduced; recreate it as a plain table"),
            new Check(relations("c.relkind in ('r', 'm') and c.relam <> (select oid from pg_am where amname = 'heap')"),
                    "only the heap table access method is reproduced"),
            new Check(relations("c.reltablespace <> 0"),
                    "objects in a tablespace other than the database's default are not reproduced; move it with"
                    + " ALTER … SET TABLESPACE pg_default"),
            new Check("select pg_describe_object('pg_class'::regclass, i.indexrelid, 0) as object from pg_index i"
                    + " join pg_class c on c.oid = i.indexrelid where c.relnamespace = (select oid from ns)"
                    + " and c.relkind = 'i' and not i.indisvalid",
                    "the index is invalid (a failed CREATE INDEX CONCURRENTLY?); drop it or REINDEX it"),
            new Check(inNamespace("pg_rewrite", "select w.oid from pg_rewrite w join pg_class c on c.oid = w.ev_class"
                    + " where w.rulename <> '_RETURN'"), "rules are not reproduced; replace the rule with a trigger"),
            new Check(inNamespace("pg_proc", "select p.oid from pg_proc p where p.prokind = 'a'"),
                    "aggregates are not reproduced; drop it before the move and recreate it afterwards"),
            new Check(inNamespace("pg_proc", "select p.oid from pg_proc p join pg_language l on l.oid = p.prolang"
                    + " where l.lanname in ('c', 'internal') and p.prokind <> 'a' and not " + CatalogSql.internal(
                    "'pg_proc'::regclass", "p.oid")),
                    "functions in C are installed by a superuser, not reproduced; use an extension that provides it"),
            new Check(inNamespace("pg_type", "select t.oid from pg_type t where t.typtype in ('b', 'p') and not "
                    + CatalogSql.internal("'pg_type'::regclass", "t.oid")),
                    "base and shell types need C functions and are not reproduced; use an extension that provides it"),
            new Check(otherKinds(), "this kind of object is not reproduced by a move; drop it before the move and"
                    + " recreate it afterwards"),
            new Check("select pg_describe_object(s.classoid, s.objoid, s.objsubid) as object from pg_seclabel s"
                    + " join objects o on o.classid = s.classoid and o.objid = s.objoid",
                    "security labels are not reproduced; remove the label (SECURITY LABEL … IS NULL)"),
            new Check(ownedByOthers(), "it is owned by another role than the tenant's, which does not move with the"
                    + " tenant; change its owner to the tenant's role or drop it"),
            new Check(ownedOutside(), "the tenant's role owns it outside the tenant's schema, where a move does not"
                    + " look; drop it or move it into the tenant's schema"),
            new Check("select pg_describe_object('pg_event_trigger'::regclass, e.oid, 0) as object"
                    + " from pg_event_trigger e join pg_proc p on p.oid = e.evtfoid"
                    + " where p.pronamespace = (select oid from ns)",
                    "event triggers are database-wide and need a superuser; they are not moved"),
            new Check(grantsToOthers(), "a privilege is granted to a role other than the tenant's and PUBLIC, which"
                    + " does not move with the tenant; revoke it"),
            new Check("select 'policy ' || quote_ident(y.polname) || ' on ' || pg_describe_object("
                    + "'pg_class'::regclass, c.oid, 0) as object from pg_policy y join pg_class c"
                    + " on c.oid = y.polrelid where c.relnamespace = (select oid from ns)"
                    + " and exists (select 1 from unnest(y.polroles) r where r not in (0, (select oid from role)))",
                    "the policy names a role other than the tenant's and PUBLIC; change it to the tenant's role"),
            new Check(outsideDependencies(), "it depends on an object outside the tenant's schema (other than the"
                    + " system catalog and extensions), which does not move; drop the dependency"));

    /** What cannot be moved, or an empty list. */
    public static List<Refusal> find(Connection connection, Source source) {
        return ReadOnlySnapshot.read(connection, "", "look for what cannot be moved", catalog -> {
            long[] oids = catalog.resolve(source);
            return find(catalog, oids[0], oids[1]);
        });
    }

    static List<Refusal> find(Catalog catalog, long namespace, long role) throws SQLException {
        List<Refusal> refusals = new ArrayList<>();
        Set<String> seen = new LinkedHashSet<>();
        for (Check check : CHECKS) {
            for (Catalog.Row row : catalog.rows(PREFIX + check.sql(), namespace, role)) {
                String object = row.text("object");
                if (seen.add(object + "\n" + check.reason())) {
                    String extra = row.values().containsKey("detail") ? " (" + row.text("detail") + ")" : "";
                    refusals.add(new Refusal(object + extra, check.reason()));
                }
            }
        }
        return refusals;
    }

    /** The error for a non-empty list: one message naming every object. */
    public static PalisadeException asError(Source source, List<Refusal> refusals) {
        return new PalisadeException(ErrorCode.CONFLICT, "the tenant's schema " + source.namespace() + " holds "
                + refusals.size() + " object(s) a move cannot take along: " + String.join("; ",
                        refusals.stream().map(Refusal::toString).toList())
                + "; nothing was moved");
    }

    private static String relations(String condition) {
        return "select pg_describe_object('pg_class'::regclass, c.oid, 0) as object from pg_class c"
                + " where c.relnamespace = (select oid from ns) and " + condition + " order by c.oid";
    }

    /** Objects of {@code catalog} among the namespace's (non-extension) objects whose oid the query selects. */
    private static String inNamespace(String catalog, String oids) {
        return "select pg_describe_object(o.classid, o.objid, 0) as object from objects o"
                + " where o.classid = '" + catalog + "'::regclass and o.objid in (" + oids + ") order by o.objid";
    }

    private static String otherKinds() {
        StringBuilder sql = new StringBuilder("select pg_describe_object(x.classid, x.objid, 0) as object from (");
        String[][] kinds = {
            {"pg_operator", "oprnamespace"}, {"pg_opclass", "opcnamespace"}, {"pg_opfamily", "opfnamespace"},
            {"pg_collation", "collnamespace"}, {"pg_conversion", "connamespace"}, {"pg_ts_config", "cfgnamespace"},
            {"pg_ts_dict", "dictnamespace"}, {"pg_ts_parser", "prsnamespace"}, {"pg_ts_template", "tmplnamespace"}
        };
        for (int i = 0; i < kinds.length; i++) {
            sql.append(i == 0 ? "" : " union all ").append("select '").append(kinds[i][0])
                    .append("'::regclass::oid as classid, oid as objid from ").append(kinds[i][0]).append(" where ")
                    .append(kinds[i][1]).append(" = (select oid from ns)");
        }
        sql.append(" union all select 'pg_cast'::regclass::oid, k.oid from pg_cast k where exists (select 1"
                + " from pg_type t where t.oid in (k.castsource, k.casttarget)"
                + " and t.typnamespace = (select oid from ns)"
                + " and not exists (select 1 from pg_depend e where e.classid = 'pg_type'::regclass"
                + " and e.objid = t.oid and e.deptype = 'e'))");
        return sql.append(") x where not exists (select 1 from pg_depend e where e.classid = x.classid"
                + " and e.objid = x.objid and (e.deptype = 'e' or e.deptype = 'i' and e.refobjid <> e.objid))"
                + " order by 1").toString();
    }

    private static String ownedByOthers() {
        return """
                select pg_describe_object(x.classid, x.objid, 0) as object, pg_get_userbyid(x.owner) as detail from (
                """ + CatalogSql.OWNED_IN_NAMESPACE + """
                ) x
                where x.owner <> (select oid from role)
                  and not exists (select 1 from pg_depend e where e.classid = x.classid and e.objid = x.objid
                      and (e.deptype = 'e' or e.deptype = 'i' and e.refobjid <> e.objid))
                order by 1""";
    }

    /** {@code pg_identify_object(…).schema} is quoted where needed, so it is compared with the quoted name. */
    private static String ownedOutside() {
        return """
                select pg_describe_object(s.classid, s.objid, 0) as object from pg_shdepend s
                where s.refclassid = 'pg_authid'::regclass and s.refobjid = (select oid from role) and s.deptype = 'o'
                  and s.dbid = (select oid from pg_database where datname = current_database())
                  and s.classid not in ('pg_extension'::regclass, 'pg_largeobject'::regclass)
                  and not (s.classid = 'pg_namespace'::regclass and s.objid = (select oid from ns))
                  and not (s.classid = 'pg_default_acl'::regclass and exists (select 1 from pg_default_acl d
                      where d.oid = s.objid and d.defaclnamespace in (0, (select oid from ns))))
                  and (pg_identify_object(s.classid, s.objid, 0)).schema is distinct from
                      (select quote_ident(nspname) from pg_namespace where oid = (select oid from ns))
                  and coalesce((pg_identify_object(s.classid, s.objid, 0)).schema, '') !~ '^pg_(toast_)?temp_'
                order by 1""";
    }

    private static String grantsToOthers() {
        return """
                select x.object, pg_get_userbyid(a.grantee) as detail from (
                    select pg_describe_object('pg_class'::regclass, c.oid, 0) as object, c.relacl as acl from pg_class c
                        where c.relnamespace = (select oid from ns)
                    union all select pg_describe_object('pg_class'::regclass, c.oid, a.attnum), a.attacl
                        from pg_class c join pg_attribute a on a.attrelid = c.oid
                        where c.relnamespace = (select oid from ns) and a.attacl is not null
                    union all select pg_describe_object('pg_proc'::regclass, p.oid, 0), p.proacl from pg_proc p
                        where p.pronamespace = (select oid from ns)
                    union all select pg_describe_object('pg_type'::regclass, t.oid, 0), t.typacl from pg_type t
                        where t.typnamespace = (select oid from ns)
                    union all select pg_describe_object('pg_default_acl'::regclass, d.oid, 0), d.defaclacl
                        from pg_default_acl d where d.defaclrole = (select oid from role)
                ) x, aclexplode(x.acl) a
                where a.grantee not in (0, (select oid from role))
                order by 1, 2""";
    }

    private static String outsideDependencies() {
        return """
                select distinct case when r.classid = 'pg_rewrite'::regclass
                        then pg_describe_object('pg_class'::regclass,
                            (select w.ev_class from pg_rewrite w where w.oid = r.objid), 0)
                    else pg_describe_object(r.classid, r.objid, 0) end as object,
                    pg_describe_object(r.refclassid, r.refobjid, 0) as detail
                from referenced r
                where not (r.refclassid = 'pg_namespace'::regclass and r.refobjid = (select oid from ns))
                  and case when r.refclassid = 'pg_namespace'::regclass then true
                      else coalesce((pg_identify_object(r.refclassid, r.refobjid, 0)).schema not in
                          ((select quote_ident(nspname) from pg_namespace where oid = (select oid from ns)),
                           'pg_catalog', 'information_schema'), false) end
                  and not exists (select 1 from pg_depend e where e.classid = r.refclassid and e.objid = r.refobjid
                      and e.deptype = 'e')
                  and not (r.refclassid = 'pg_type'::regclass and exists (select 1 from pg_type t
                      join pg_depend e on e.classid = 'pg_type'::regclass and e.objid = t.typelem and e.deptype = 'e'
                      where t.oid = r.refobjid))
                order by 1, 2""";
    }
}
