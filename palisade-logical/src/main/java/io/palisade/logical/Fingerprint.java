package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * A structural fingerprint of a tenant's namespace, to compare a source and its copy exactly: each object kind, name
 * and definition ({@code pg_get_*def}, {@code format_type}, {@code pg_get_expr}, read with the namespace and its
 * extensions' schemas on the search path, so that names print unqualified), column types and settings, constraints,
 * indexes, triggers, policies, routines, views, comments, privileges and owners, plus the data: each table's row count
 * and a hash of its rows, and each sequence's last value. The namespace's name and its extensions' schemas read as
 * {@code "<ns>"} wherever they still appear (routine bodies, {@code search_path} settings), the tenant's role as
 * {@code <tenant>}. Entries are keyed like {@code column orders.status}; {@link #differencesFrom} says what differs.
 * Hashing reads every row (fine for tests and small tenants, not a tool for large ones). Immutable.
 */
public record Fingerprint(SortedMap<String, String> entries) {
    private static final String DATA = "data ";
    private static final String PLACEHOLDER = "\"<ns>\"";

    public Fingerprint {
        entries = Collections.unmodifiableSortedMap(new TreeMap<>(requireNonNull(entries, "entries is null")));
    }

    /** The fingerprint of {@code namespace}, its objects owned by {@code role}. A superuser's connection. */
    public static Fingerprint of(java.sql.Connection connection, String namespace, String role) {
        Source source = new Source(namespace, role);
        return ReadOnlySnapshot.read(connection, "", "fingerprint schema " + namespace, catalog -> {
            long[] oids = catalog.resolve(source);
            Extensions.Used extensions = Extensions.used(catalog, oids[0]);
            List<String> path = new ArrayList<>(List.of(namespace));
            extensions.schemas().stream().filter(s -> !path.contains(s)).forEach(path::add);
            List<String> quoted = new ArrayList<>();
            Map<String, String> placeholders = new HashMap<>();
            for (String schema : path) {
                quoted.add(catalog.value("select quote_ident(?)", schema));
                placeholders.put(schema, PLACEHOLDER);
            }
            catalog.value("select set_config('search_path', ?, true)", String.join(", ", quoted));
            SortedMap<String, String> entries = new TreeMap<>();
            for (SchemaScript.Extension extension : extensions.extensions()) {
                entries.put("extension " + extension.name(), extension.version());
            }
            read(catalog, oids, placeholders, entries, quoted.getFirst());
            return new Fingerprint(entries);
        });
    }

    private static void read(Catalog catalog, long[] oids, Map<String, String> placeholders,
            SortedMap<String, String> entries, String namespace) throws SQLException {
        NamespaceRewriter rewriter = new NamespaceRewriter(placeholders);
        for (String sql : FingerprintQueries.STRUCTURE) {
            for (Catalog.Row row : catalog.rows(FingerprintQueries.PREFIX + sql, oids[0], oids[1])) {
                put(entries, rewriter.code(row.text("key")), row.text("value") == null ? ""
                        : rewriter.code(row.text("value")));
            }
        }
        for (Catalog.Row row : catalog.rows(FingerprintQueries.PREFIX + FingerprintQueries.ROUTINES, oids[0],
                oids[1])) {
            StringBuilder definition = new StringBuilder();
            for (String line : rewriter.routine(row.text("definition")).split("\n", -1)) {
                if (!line.startsWith(" SET search_path TO ")) {
                    definition.append(line).append('\n');
                }
            }
            if (row.text("search_path") != null) {
                definition.append("search_path ").append(RoutineDdl.searchPath(row.text("search_path"),
                        Map.copyOf(placeholdersUnquoted(placeholders))));
            }
            put(entries, row.text("key"), definition.toString());
        }
        for (Catalog.Row row : catalog.rows(FingerprintQueries.PREFIX + FingerprintQueries.STATISTICS, oids[0],
                oids[1])) {
            put(entries, row.text("key"), rewriter.code(row.text("definition")));
        }
        for (Catalog.Row row : catalog.rows(FingerprintQueries.PREFIX + FingerprintQueries.SEQUENCE_VALUES, oids[0],
                oids[1])) {
            put(entries, row.text("key"), row.text("value"));
        }
        for (Catalog.Row row : catalog.rows(FingerprintQueries.PREFIX + FingerprintQueries.DATA, oids[0], oids[1])) {
            String name = row.text("name");
            Catalog.Row data = catalog.rows("select count(*) as n, md5(string_agg(md5(x::text), '' order by"
                    + " md5(x::text))) as hash from only " + namespace + "." + name + " x").getFirst();
            put(entries, DATA + name, data.number("n") + " rows, " + data.text("hash"));
        }
    }

    private static Map<String, List<String>> placeholdersUnquoted(Map<String, String> placeholders) {
        Map<String, List<String>> unquoted = new HashMap<>();
        placeholders.keySet().forEach(k -> unquoted.put(k, List.of("<ns>")));
        return unquoted;
    }

    private static void put(SortedMap<String, String> entries, String key, String value) {
        String previous = entries.putIfAbsent(key, value);
        if (previous != null && !previous.equals(value)) {
            entries.put(key, previous + " || " + value);
        }
    }

    /** Without the data entries: the structure alone. */
    public Fingerprint structure() {
        SortedMap<String, String> structure = new TreeMap<>(entries);
        structure.keySet().removeIf(key -> key.startsWith(DATA));
        return new Fingerprint(structure);
    }

    /** What differs from {@code other}, one line per entry ({@code only here}, {@code only there}, or both values). */
    public List<String> differencesFrom(Fingerprint other) {
        List<String> differences = new ArrayList<>();
        for (Map.Entry<String, String> entry : entries.entrySet()) {
            String theirs = other.entries.get(entry.getKey());
            if (theirs == null) {
                differences.add("only here: " + entry.getKey() + " = " + entry.getValue());
            } else if (!theirs.equals(entry.getValue())) {
                differences.add("differs: " + entry.getKey() + "\n  here:  " + entry.getValue() + "\n  there: "
                        + theirs);
            }
        }
        for (Map.Entry<String, String> entry : other.entries.entrySet()) {
            if (!entries.containsKey(entry.getKey())) {
                differences.add("only there: " + entry.getKey() + " = " + entry.getValue());
            }
        }
        return differences;
    }
}
