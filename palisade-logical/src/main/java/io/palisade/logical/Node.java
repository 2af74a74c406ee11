package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import io.palisade.logical.SchemaScript.Step;
import java.util.List;

/**
 * An object created before the data: a type, sequence, table, routine, view or materialized view, identified as
 * {@code <catalog>:<oid>} (a composite type by its {@code pg_type} row, a table by its {@code pg_class} row). The
 * {@link Kind} orders kinds where dependencies do not: types, sequences, tables, routines, views.
 */
record Node(String key, Kind kind, long oid, String object, List<Step> steps) {
    Node {
        requireNonNull(key, "key is null");
        requireNonNull(kind, "kind is null");
        requireNonNull(object, "object is null");
        steps = List.copyOf(requireNonNull(steps, "steps is null"));
    }

    /** In the order the issue gives when nothing else decides. */
    enum Kind {
        TYPE,
        SEQUENCE,
        TABLE,
        ROUTINE,
        VIEW
    }
}
