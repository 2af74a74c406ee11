package io.palisade.logical;

import io.palisade.logical.SchemaScript.Step;
import io.palisade.pgwire.Sql;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Functions and procedures as {@code pg_get_functiondef} gives them, with qualified references to the source schema
 * moved to the target (in the body's strings too, see {@link NamespaceRewriter}). A {@code SET search_path} attached to
 * a routine is rewritten element by element (PostgreSQL prints it as a list of strings, which the rewriter leaves
 * alone); the namespace becomes the target namespace and, if the source's extensions lived in it, the target's
 * extension schema too. Aggregates and C
 * functions never get here (see {@link Refusals}). Stateless.
 */
final class RoutineDdl {
    private RoutineDdl() {}

    private static final String ROUTINES = CatalogSql.NAMESPACE + """
            select p.oid, p.prokind, quote_ident(p.proname) as name, pg_get_function_identity_arguments(p.oid) as args,
                pg_get_functiondef(p.oid) as definition,
                (select o.option_value from pg_options_to_table(p.proconfig) o where o.option_name = 'search_path')
                    as search_path
            from pg_proc p
            where p.pronamespace = (select oid from ns) and p.prokind in ('f', 'p')
              and not exists (select 1 from pg_depend e where e.classid = 'pg_proc'::regclass and e.objid = p.oid
                  and (e.deptype = 'e' or e.deptype = 'i' and e.refobjid <> e.objid))
            order by p.oid
            """;

    /**
     * {@code schemas}: source schema name → the target schema names (unquoted) it becomes in a routine's
     * {@code search_path} (the namespace may become the namespace and the extension schema).
     */
    static List<Node> routines(ScriptContext ctx, Map<String, List<String>> schemas) throws SQLException {
        List<Node> nodes = new ArrayList<>();
        for (Catalog.Row row : ctx.catalog().rows(ROUTINES, ctx.namespace())) {
            String object = (row.text("prokind").equals("p") ? "procedure " : "function ") + row.text("name") + "("
                    + row.text("args") + ")";
            String definition = ctx.routine(row.text("definition"));
            if (row.text("search_path") != null) {
                definition = withSearchPath(definition, searchPath(row.text("search_path"), schemas));
            }
            nodes.add(new Node("pg_proc:" + row.number("oid"), Node.Kind.ROUTINE, row.number("oid"), object,
                    List.of(ScriptContext.step(object, definition))));
        }
        return nodes;
    }

    /** The definition with the {@code SET search_path TO …} line of its header replaced by {@code searchPath}. */
    static String withSearchPath(String definition, String searchPath) {
        int body = definition.length();
        for (String start : List.of("\nAS ", "\nBEGIN ATOMIC", "\nRETURN ")) {
            int at = definition.indexOf(start);
            if (at >= 0 && at < body) {
                body = at;
            }
        }
        String prefix = "\n SET search_path TO ";
        int line = definition.lastIndexOf(prefix, body);
        if (line < 0) {
            throw new IllegalStateException("no search_path setting in the header of a routine that has one");
        }
        int end = definition.indexOf('\n', line + 1);
        return definition.substring(0, line) + prefix + searchPath + definition.substring(end);
    }

    /**
     * {@code public, "$user", pg_temp} with each element naming a source schema replaced by its targets, and every
     * element a quoted identifier.
     */
    static String searchPath(String value, Map<String, List<String>> schemas) {
        List<String> elements = new ArrayList<>();
        for (String element : splitList(value)) {
            String trimmed = element.trim();
            String name = trimmed.startsWith("\"") && trimmed.endsWith("\"") && trimmed.length() > 1
                    ? trimmed.substring(1, trimmed.length() - 1).replace("\"\"", "\"")
                    : trimmed.toLowerCase(java.util.Locale.ROOT);
            List<String> targets = schemas.get(name);
            if (targets == null) {
                // re-quoted, never copied raw: PostgreSQL accepts a stored setting such as
                // x/**/AS/**/'';RESET/**/ROLE;… as one element, which pasted into DDL would end the statement
                elements.add(Sql.quoteIdent(name));
            } else {
                targets.forEach(target -> elements.add(Sql.quoteIdent(target)));
            }
        }
        return String.join(", ", elements.stream().distinct().toList());
    }

    private static List<String> splitList(String value) {
        List<String> parts = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        boolean quoted = false;
        for (char c : value.toCharArray()) {
            if (c == '"') {
                quoted = !quoted;
            }
            if (c == ',' && !quoted) {
                parts.add(current.toString());
                current.setLength(0);
            } else {
                current.append(c);
            }
        }
        parts.add(current.toString());
        return parts;
    }
}
