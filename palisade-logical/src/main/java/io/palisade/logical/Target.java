package io.palisade.logical;

import static java.util.Objects.requireNonNull;

/**
 * Where a tenant's schema is recreated: the namespace (which must exist and hold none of the tenant's objects yet), the
 * role that will own every object (the source's role is mapped to it in grants and policies), and the schema the
 * tenant's extensions live in on the target ({@code extensions} on a shared server's schema rung, usually the namespace
 * itself on a rung of its own). The replay runs with {@code search_path} = namespace, extension schema.
 */
public record Target(String namespace, String role, String extensionSchema) {
    public Target {
        requireNonNull(namespace, "namespace is null");
        requireNonNull(role, "role is null");
        requireNonNull(extensionSchema, "extensionSchema is null");
        if (namespace.isEmpty() || role.isEmpty() || extensionSchema.isEmpty()) {
            throw new IllegalArgumentException("namespace, role and extension schema must not be empty");
        }
    }

    /** A target whose extensions live in the namespace itself (a tenant with its own database). */
    public static Target ownDatabase(String namespace, String role) {
        return new Target(namespace, role, namespace);
    }
}
