package io.palisade.logical;

import static java.util.Objects.requireNonNull;

/**
 * Where a tenant's schema is read from: its namespace ({@code public} for a tenant with its own database or server,
 * {@code tenant_…} on the schema rung) and the role that owns its objects.
 */
public record Source(String namespace, String role) {
    public Source {
        requireNonNull(namespace, "namespace is null");
        requireNonNull(role, "role is null");
        if (namespace.isEmpty() || role.isEmpty()) {
            throw new IllegalArgumentException("namespace and role must not be empty");
        }
    }
}
