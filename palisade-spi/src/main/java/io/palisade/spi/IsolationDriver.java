package io.palisade.spi;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One rung of the isolation ladder. Implementations own everything an instance has on the host (volume, process or VM,
 * network, cgroups) and name all of it from the instance id, so that {@link #listInstances()} and
 * {@link #destroy(String)} can find it again after a crash. Implementations must be thread-safe for calls on different
 * ids; calls for the same id are serialised by the caller.
 */
public interface IsolationDriver extends AutoCloseable {
    /** The rung this driver implements. */
    Rung rung();

    /** The rung's name in the API: {@code vm}, {@code process}, {@code database}, {@code schema}. */
    default String name() {
        return rung().wireName();
    }

    /** Cheap check of this host; called once at start and shown in the health endpoint. */
    DriverProbe probe();

    /**
     * Creates the instance's volume from a template, starts it, sets the tenant's credentials and waits until PostgreSQL
     * answers. On failure everything this call created is removed before the exception propagates.
     */
    RunningInstance provision(InstanceSpec spec, TenantCredentials credentials, ProgressListener progress);

    /** Starts an existing, stopped instance from its volume and waits until PostgreSQL answers. Idempotent. */
    RunningInstance start(InstanceSpec spec, ProgressListener progress);

    /** Stops the instance (fast shutdown, bounded, then killed); keeps the volume. Idempotent. */
    void stop(String id);

    /** Stops the instance and removes everything it has on the host. Idempotent: unknown ids are a no-op. */
    void destroy(String id);

    /** Sets a new password for the tenant role of a running instance. */
    void setPassword(String id, String username, String password);

    /** Whether the instance's server is alive right now. */
    boolean isRunning(String id);

    /** Ids of every instance this driver has anything of on this host (volumes, processes, networks). */
    Set<String> listInstances();

    InstanceStats stats(String id);

    /** The last {@code lines} lines of the instance's PostgreSQL log. */
    List<String> logTail(String id, int lines);

    /** Whether {@link #suspend(InstanceSpec)} is supported (scale to zero: state saved to disk, no RAM held). */
    default boolean supportsSuspend() {
        return false;
    }

    /**
     * Saves a running instance's state to disk and releases its memory and process; {@link #resume} continues it. The
     * caller guarantees no client connection is open. A saved state is resumed at most once. {@code spec} is the one
     * the instance was provisioned with (a driver may need to start a helper process of the same shape).
     */
    default void suspend(InstanceSpec spec) {
        throw new PalisadeException(ErrorCode.CONFLICT, "the " + name() + " rung cannot suspend instances");
    }

    /** Whether the instance is suspended (saved state on disk, nothing running). */
    default boolean isSuspended(String id) {
        return false;
    }

    /**
     * Continues a suspended instance and returns once PostgreSQL runs and listens: a login right after the call reaches
     * it. A driver may know that without asking PostgreSQL (the vm rung: a guest continued with the PostgreSQL that
     * answered when it was saved). If the saved state is missing or corrupt, cold boots from the volume with nothing
     * lost. Default: a plain start.
     */
    default RunningInstance resume(InstanceSpec spec, ProgressListener progress) {
        return start(spec, progress);
    }

    /**
     * How palisade reaches the running instance as its management superuser with replication rights (for WAL archiving
     * and base backups). The instance must be running; the answer is only valid until it stops.
     */
    default AdminAccess adminAccess(String id) {
        throw new PalisadeException(ErrorCode.CONFLICT, "the " + name() + " rung does not support backups");
    }

    /** Whether {@link #provisionFrom} and {@link #rename} are supported (restore, fork, in-place restore). */
    default boolean supportsRestore() {
        return false;
    }

    /**
     * Creates the instance from a prepared PostgreSQL data directory ({@code PG_VERSION} at its top; base backup
     * extracted, recovery configured and WAL staged by the caller) instead of the template, starts it, waits until
     * recovery has ended and PostgreSQL accepts read-write connections, then sets the tenant's credentials. The directory
     * is consumed: moved or copied, then removed. On failure everything this call created is removed, the exception
     * carries the tail of the server's log, and the directory is removed too.
     */
    default RunningInstance provisionFrom(
            InstanceSpec spec, TenantCredentials credentials, java.nio.file.Path dataDirectory, ProgressListener progress) {
        throw new PalisadeException(ErrorCode.CONFLICT, "the " + name() + " rung cannot restore databases");
    }

    /**
     * Renames a stopped instance: everything it has on the host (volume, directories, settings) moves from
     * {@code fromId} to {@code toId}, which must have nothing on this host. Used by in-place restore to keep the
     * pre-restore state as a database of its own. Not idempotent: fails if {@code fromId} has nothing or is running.
     */
    default void rename(String fromId, String toId) {
        throw new PalisadeException(ErrorCode.CONFLICT, "the " + name() + " rung cannot rename instances");
    }

    /**
     * Where the running instance keeps its tenant's objects and how palisade reaches them as a superuser, for a move
     * between rungs (schema copy and logical replication). The instance must be running; the answer is only valid until
     * it stops. The server must run with {@code wal_level = logical} to be a move's source.
     */
    default TenantPlace tenantPlace(String id) {
        throw new PalisadeException(ErrorCode.CONFLICT, "the " + name() + " rung cannot take part in a move");
    }

    /**
     * Opens a way for the running instance's server to connect to {@code hostEndpoint}, a server listening on this host's
     * loopback (a move's source), until the route is closed. Default: the instance shares the host's network and dials
     * the address as it is.
     */
    default HostRoute routeToHost(String id, Endpoint hostEndpoint) {
        return HostRoute.direct(hostEndpoint);
    }

    /**
     * Background work of the rung a client may want to see in {@code /v1/health} (e.g. the vm rung preparing its
     * template snapshot: state, phase), as flat key/value pairs; empty (the default) when there is none.
     */
    default Map<String, String> healthDetails() {
        return Map.of();
    }

    /** Stops nothing; releases driver-wide resources. Instances keep running only if the driver says so. */
    @Override
    default void close() {}
}
