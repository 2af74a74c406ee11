package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import java.util.List;

/**
 * A tenant's schema as SQL, in the order that recreates it: {@link #steps()} run before the data is copied (extensions
 * are created first, from {@link #extensions()}), {@link #afterCopy()} once the data is there (constraints marked
 * {@code NOT VALID} on the source, which would otherwise check the copied rows, then materialized views refreshed).
 * Object names in the statements are those of the {@link #target()}; no statement changes ownership (the replay runs as
 * the target role).
 */
public record SchemaScript(
        Source source, Target target, List<Extension> extensions, List<Step> steps, List<Step> afterCopy) {
    public SchemaScript {
        requireNonNull(source, "source is null");
        requireNonNull(target, "target is null");
        extensions = List.copyOf(requireNonNull(extensions, "extensions is null"));
        steps = List.copyOf(requireNonNull(steps, "steps is null"));
        afterCopy = List.copyOf(requireNonNull(afterCopy, "afterCopy is null"));
    }

    /** One statement and the object it creates or changes (for error messages; the statement may hold data). */
    public record Step(String object, String sql) {
        public Step {
            requireNonNull(object, "object is null");
            requireNonNull(sql, "sql is null");
        }
    }

    /** An extension the tenant's objects use, at the source's version. */
    public record Extension(String name, String version) {
        public Extension {
            requireNonNull(name, "name is null");
            requireNonNull(version, "version is null");
        }
    }
}
