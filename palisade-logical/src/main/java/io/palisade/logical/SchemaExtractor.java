package io.palisade.logical;

import io.palisade.logical.SchemaScript.Step;
import io.palisade.spi.PalisadeException;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reproduces a tenant's schema from the catalog of its source database (the PostgreSQL binaries here have no pg_dump),
 * as a {@link SchemaScript} that recreates it in a target namespace, possibly under another name and on another rung.
 *
 * <p>Order: extensions; then types, sequences, tables, routines, views and materialized views, sorted by their
 * dependencies ({@link DependencyOrder}); sequence ownership and column settings; constraints and indexes; triggers;
 * row level security and policies; comments; privileges; default privileges. After the copy: {@code NOT VALID}
 * constraints, triggers enabled {@code ALWAYS}/{@code REPLICA}, materialized views refreshed.
 *
 * <p>Names. Definitions are read with {@code search_path} = the source namespace, then the extensions' schemas, so
 * PostgreSQL's deparsers ({@code pg_get_viewdef}, {@code pg_get_expr}, {@code pg_get_indexdef}, {@code format_type},
 * …) print the tenant's own objects and extension objects unqualified; the replay sets {@code search_path} = the target
 * namespace, then the target's extension schema, so they resolve there. Where a deparser still qualifies (routine
 * names, statistics objects, a name shadowed by {@code pg_catalog}) and where routine bodies (stored as text) qualify
 * names themselves, {@link NamespaceRewriter} replaces the source schema by the target's, and an extension schema by
 * the target's extension schema. Limits: a body that builds a schema-qualified name at run time
 * ({@code format('%I.%I', 'public', t)}) keeps the source name; a body's string that merely contains
 * {@code public.x} is changed too; unqualified names in bodies resolve through the caller's {@code search_path} on the
 * target as on the source.
 *
 * <p>Nothing is extracted while {@link Refusals} finds anything: the caller gets one error naming every object. The
 * connection must be a superuser's (to read every catalog) and outside a transaction. Stateless and thread-safe; the
 * connection is used by one call at a time.
 */
public final class SchemaExtractor {
    private SchemaExtractor() {}

    public static SchemaScript extract(Connection source, Source from, Target to) {
        return ReadOnlySnapshot.read(source, "", "extract the tenant's schema " + from.namespace(), catalog -> {
            long[] oids = catalog.resolve(from);
            List<Refusal> refusals = Refusals.find(catalog, oids[0], oids[1]);
            if (!refusals.isEmpty()) {
                throw Refusals.asError(from, refusals);
            }
            Extensions.Used extensions = Extensions.used(catalog, oids[0]);
            List<String> path = new ArrayList<>(List.of(from.namespace()));
            extensions.schemas().stream().filter(s -> !path.contains(s)).forEach(path::add);
            List<String> quoted = new ArrayList<>();
            for (String schema : path) {
                quoted.add(catalog.value("select quote_ident(?)", schema));
            }
            catalog.value("select set_config('search_path', ?, true)", String.join(", ", quoted));
            ScriptContext ctx = context(catalog, oids, from, to, extensions);
            return script(ctx, from, to, extensions, schemaMap(from, to, extensions));
        });
    }

    private static ScriptContext context(Catalog catalog, long[] oids, Source from, Target to,
            Extensions.Used extensions) throws SQLException {
        String namespace = catalog.value("select quote_ident(?)", to.namespace());
        String extensionSchema = catalog.value("select quote_ident(?)", to.extensionSchema());
        Map<String, String> schemas = schemaMap(from, to, extensions);
        Map<String, String> replacements = new HashMap<>();
        for (Map.Entry<String, String> entry : schemas.entrySet()) {
            replacements.put(entry.getKey(), entry.getValue().equals(to.namespace()) ? namespace : extensionSchema);
        }
        for (String name : List.of(to.namespace(), to.extensionSchema())) {
            String mapped = schemas.get(name);
            if (mapped != null && !mapped.equals(name)) {
                throw PalisadeException.invalid("cannot move schema " + from.namespace() + " into " + to.namespace()
                        + " with extensions in " + to.extensionSchema() + ": " + name + " is a schema of the source"
                        + " too and would be renamed to " + mapped + "; choose other target names");
            }
        }
        String role = catalog.value("select quote_ident(?)", to.role());
        return new ScriptContext(catalog, oids[0], oids[1], namespace, role, new NamespaceRewriter(replacements));
    }

    /** Source schema → target schema (unquoted): the namespace, and each extension schema; identities left out. */
    private static Map<String, String> schemaMap(Source from, Target to, Extensions.Used extensions) {
        Map<String, String> map = new LinkedHashMap<>();
        if (!from.namespace().equals(to.namespace())) {
            map.put(from.namespace(), to.namespace());
        }
        for (String schema : extensions.schemas()) {
            if (!schema.equals(from.namespace()) && !schema.equals(to.extensionSchema())) {
                map.put(schema, to.extensionSchema());
            }
        }
        return map;
    }

    private static SchemaScript script(ScriptContext ctx, Source from, Target to, Extensions.Used extensions,
            Map<String, String> schemas) throws SQLException {
        List<Step> afterCopy = new ArrayList<>();
        List<Step> ownership = new ArrayList<>();
        List<Step> settings = new ArrayList<>();
        Map<String, Step> refreshes = new HashMap<>();
        Map<String, List<String>> searchPaths = new HashMap<>();
        schemas.forEach((source, target) -> searchPaths.put(source, List.of(target)));
        List<String> namespace = new ArrayList<>(List.of(to.namespace()));
        if (extensions.schemas().contains(from.namespace()) && !to.extensionSchema().equals(to.namespace())) {
            namespace.add(to.extensionSchema());
        }
        searchPaths.put(from.namespace(), namespace);
        List<Node> nodes = new ArrayList<>();
        nodes.addAll(TypeDdl.types(ctx, afterCopy));
        nodes.addAll(TypeDdl.sequences(ctx, ownership));
        nodes.addAll(TableDdl.tables(ctx, settings, afterCopy));
        nodes.addAll(RoutineDdl.routines(ctx, searchPaths));
        nodes.addAll(ViewDdl.views(ctx, refreshes));
        List<Step> steps = new ArrayList<>();
        List<Node> sorted = DependencyOrder.sort(ctx, nodes);
        for (Node node : sorted) {
            steps.addAll(node.steps());
        }
        steps.addAll(ownership);
        steps.addAll(settings);
        steps.addAll(IndexDdl.steps(ctx));
        steps.addAll(TriggerPolicyDdl.triggers(ctx, afterCopy));
        steps.addAll(TriggerPolicyDdl.security(ctx));
        steps.addAll(CommentDdl.steps(ctx));
        steps.addAll(GrantDdl.privileges(ctx));
        steps.addAll(GrantDdl.defaults(ctx));
        for (Node node : sorted) {
            Step refresh = refreshes.get(node.key());
            if (refresh != null) {
                afterCopy.add(refresh);
            }
        }
        return new SchemaScript(from, to, extensions.extensions(), steps, afterCopy);
    }
}
