package io.palisade.spi;

/**
 * Creates and drops databases inside a tenant's own PostgreSQL server (the broker's {@code /v1/databases} routes under
 * {@code broker_url}), as palisade's management user, each owned by the tenant's role. Only the rungs that give a
 * tenant a server of its own allow it; on a shared server implementations throw {@link PalisadeException} with
 * {@link ErrorCode#QUOTA_EXCEEDED} (403). The caller has authenticated the tenant and validated {@code name}.
 * Implementations must be thread-safe.
 */
public interface ServerDatabases {
    /** Creates {@code name} owned by the tenant's role; a PostgreSQL error (e.g. 42P04, exists) is thrown as is. */
    void create(String databaseId, String name);

    /** Drops {@code name} (closing its sessions) when the tenant's role owns it; nothing when it does not exist. */
    void drop(String databaseId, String name);
}
