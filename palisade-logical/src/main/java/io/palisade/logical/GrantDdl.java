package io.palisade.logical;

import io.palisade.logical.SchemaScript.Step;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Privileges inside the tenant: on relations, columns, routines, types and domains whose access list is not the
 * default, and the tenant role's default privileges (global and in its namespace). Grantees are the tenant's own role
 * (mapped to the target role) and PUBLIC; anything granted to another role is refused before a move (see
 * {@link Refusals}). Each access list is reproduced exactly: everything is revoked from PUBLIC and the role, then
 * granted as on the source. Default privileges come last so that they do not touch the objects the script creates.
 * Stateless.
 */
final class GrantDdl {
    private GrantDdl() {}

    private static final String PRIVILEGES = CatalogSql.NAMESPACE + """
            select x.kind, x.object, x.col, a.grantee::bigint as grantee, a.privilege_type, a.is_grantable
            from (
                select case when c.relkind = 'S' then 'SEQUENCE' else 'TABLE' end as kind,
                    quote_ident(c.relname) as object, null::text as col, c.relacl as acl, 0 as sort
                    from pg_class c where c.relnamespace = (select oid from ns) and c.relacl is not null
                union all
                select 'TABLE', quote_ident(c.relname), quote_ident(a.attname), a.attacl, 1
                    from pg_class c join pg_attribute a on a.attrelid = c.oid
                    where c.relnamespace = (select oid from ns) and a.attacl is not null and not a.attisdropped
                union all
                select case when p.prokind = 'p' then 'PROCEDURE' else 'FUNCTION' end,
                    quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')', null,
                    p.proacl, 0
                    from pg_proc p where p.pronamespace = (select oid from ns) and p.proacl is not null
                      and not exists (select 1 from pg_depend e where e.classid = 'pg_proc'::regclass
                          and e.objid = p.oid and (e.deptype = 'e' or e.deptype = 'i' and e.refobjid <> e.objid))
                union all
                select case when t.typtype = 'd' then 'DOMAIN' else 'TYPE' end, quote_ident(t.typname), null,
                    t.typacl, 0
                    from pg_type t where t.typnamespace = (select oid from ns) and t.typacl is not null
                      and not exists (select 1 from pg_depend e where e.classid = 'pg_type'::regclass
                          and e.objid = t.oid and (e.deptype = 'e' or e.deptype = 'i' and e.refobjid <> e.objid))
            ) x, aclexplode(x.acl) a
            order by x.sort, x.kind, x.object, x.col, a.grantee, a.privilege_type
            """;

    private static final String DEFAULTS = CatalogSql.NAMESPACE + """
            , role as (select ?::oid as oid)
            select d.defaclnamespace <> 0 as in_schema, d.defaclobjtype, a.grantee::bigint as grantee,
                a.privilege_type, a.is_grantable
            from pg_default_acl d, aclexplode(d.defaclacl) a
            where d.defaclrole = (select oid from role) and d.defaclnamespace in (0, (select oid from ns))
            order by 1, 2, 3, 4
            """;

    static List<Step> privileges(ScriptContext ctx) throws SQLException {
        Map<String, List<Catalog.Row>> byObject = new LinkedHashMap<>();
        for (Catalog.Row row : ctx.catalog().rows(PRIVILEGES, ctx.namespace())) {
            String col = row.text("col");
            String key = row.text("kind") + " " + row.text("object") + (col == null ? "" : " (" + col + ")");
            byObject.computeIfAbsent(key, k -> new ArrayList<>()).add(row);
        }
        List<Step> steps = new ArrayList<>();
        for (List<Catalog.Row> rows : byObject.values()) {
            Catalog.Row first = rows.getFirst();
            String col = first.text("col");
            String on = " ON " + first.text("kind") + " " + ctx.qualified(first.text("object"));
            String object = "privileges on " + first.text("kind").toLowerCase(java.util.Locale.ROOT) + " "
                    + first.text("object") + (col == null ? "" : " column " + col);
            if (col == null) {
                steps.add(ScriptContext.step(object, "REVOKE ALL" + on + " FROM PUBLIC"));
                steps.add(ScriptContext.step(object, "REVOKE ALL" + on + " FROM " + ctx.targetRole()));
            }
            for (Map.Entry<String, List<String>> grant : grouped(ctx, rows).entrySet()) {
                List<String> privileges = col == null ? grant.getValue()
                        : grant.getValue().stream().map(p -> p + " (" + col + ")").toList();
                steps.add(ScriptContext.step(object, "GRANT " + String.join(", ", privileges) + on + " TO "
                        + grant.getKey()));
            }
        }
        return steps;
    }

    static List<Step> defaults(ScriptContext ctx) throws SQLException {
        Map<String, List<Catalog.Row>> byKind = new LinkedHashMap<>();
        for (Catalog.Row row : ctx.catalog().rows(DEFAULTS, ctx.namespace(), ctx.role())) {
            byKind.computeIfAbsent(row.flag("in_schema") + " " + row.text("defaclobjtype"), k -> new ArrayList<>())
                    .add(row);
        }
        List<Step> steps = new ArrayList<>();
        for (List<Catalog.Row> rows : byKind.values()) {
            Catalog.Row first = rows.getFirst();
            String on = switch (first.text("defaclobjtype")) {
                case "r" -> " ON TABLES";
                case "S" -> " ON SEQUENCES";
                case "f" -> " ON FUNCTIONS";
                case "T" -> " ON TYPES";
                case "n" -> " ON SCHEMAS";
                default -> throw new IllegalStateException("unknown default ACL kind " + first.text("defaclobjtype"));
            };
            String prefix = "ALTER DEFAULT PRIVILEGES FOR ROLE " + ctx.targetRole()
                    + (first.flag("in_schema") ? " IN SCHEMA " + ctx.targetNamespace() : "");
            String object = "default privileges" + on.toLowerCase(java.util.Locale.ROOT);
            if (!first.flag("in_schema")) {
                steps.add(ScriptContext.step(object, prefix + " REVOKE ALL" + on + " FROM PUBLIC"));
                steps.add(ScriptContext.step(object, prefix + " REVOKE ALL" + on + " FROM " + ctx.targetRole()));
            }
            for (Map.Entry<String, List<String>> grant : grouped(ctx, rows).entrySet()) {
                steps.add(ScriptContext.step(object, prefix + " GRANT " + String.join(", ", grant.getValue()) + on
                        + " TO " + grant.getKey()));
            }
        }
        return steps;
    }

    /** {@code grantee [WITH GRANT OPTION]} → privileges. */
    private static Map<String, List<String>> grouped(ScriptContext ctx, List<Catalog.Row> rows) {
        Map<String, List<String>> grants = new LinkedHashMap<>();
        for (Catalog.Row row : rows) {
            String to = ctx.grantee(row.number("grantee")) + (row.flag("is_grantable") ? " WITH GRANT OPTION" : "");
            grants.computeIfAbsent(to, k -> new ArrayList<>()).add(row.text("privilege_type"));
        }
        return grants;
    }
}
