package io.palisade.agent.shared;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * Configuration of the shared servers behind the {@code database} and {@code schema} rungs: where they live, who runs
 * them, how each is capped, and how many tenants one server takes before palisade starts another.
 *
 * @param serversDir one directory per shared server under it
 * @param tenantsPerServer placement bound: tenants (both rungs) on one server
 * @param serverCpu CPU cap of one shared server (its cgroup)
 * @param serverMemoryMb memory cap of one shared server (its cgroup); placement stops at 90 % of it
 * @param serverDiskMb placement stops once a server's data directory holds this much
 * @param maxConnections {@code max_connections} of one shared server; every tenant's own limit is well below it
 * @param monitorInterval how often servers are checked for crashes and tenants' runaway sessions are cut off
 * @param statementTimeout when set, the {@code statement_timeout} of new tenants instead of their plan's
 * @param idleInTransactionTimeout when set, the {@code idle_in_transaction_session_timeout} of new tenants instead of
 *     their plan's
 */
public record SharedServerConfig(
        Path serversDir,
        Path cacheDir,
        ServiceUser user,
        Cgroups cgroups,
        Duration startTimeout,
        int tenantsPerServer,
        int serverCpu,
        int serverMemoryMb,
        int serverDiskMb,
        int maxConnections,
        Duration monitorInterval,
        Optional<Duration> statementTimeout,
        Optional<Duration> idleInTransactionTimeout) {
    public static final int DEFAULT_TENANTS_PER_SERVER = 500;
    public static final int DEFAULT_SERVER_MEMORY_MB = 2048;
    public static final int DEFAULT_SERVER_DISK_MB = 65_536;
    public static final int DEFAULT_MAX_CONNECTIONS = 300;

    public SharedServerConfig(
            Path serversDir, Path cacheDir, ServiceUser user, Cgroups cgroups, Duration startTimeout) {
        this(serversDir, cacheDir, user, cgroups, startTimeout, DEFAULT_TENANTS_PER_SERVER, 2, DEFAULT_SERVER_MEMORY_MB,
                DEFAULT_SERVER_DISK_MB, DEFAULT_MAX_CONNECTIONS, Duration.ofSeconds(1), Optional.empty(),
                Optional.empty());
    }

    public SharedServerConfig {
        requireNonNull(serversDir, "serversDir is null");
        requireNonNull(cacheDir, "cacheDir is null");
        requireNonNull(user, "user is null");
        requireNonNull(cgroups, "cgroups is null");
        requireNonNull(startTimeout, "startTimeout is null");
        requireNonNull(monitorInterval, "monitorInterval is null");
        requireNonNull(statementTimeout, "statementTimeout is null");
        requireNonNull(idleInTransactionTimeout, "idleInTransactionTimeout is null");
        if (tenantsPerServer < 1) {
            throw new IllegalArgumentException("shared.tenants-per-server must be at least 1");
        }
        if (serverCpu < 1 || serverMemoryMb < 256 || serverDiskMb < 1024) {
            throw new IllegalArgumentException(
                    "a shared server needs at least 1 CPU, 256 MB of memory and 1024 MB of disk");
        }
        if (maxConnections < 20 || maxConnections > 10_000) {
            throw new IllegalArgumentException("shared.max-connections must be between 20 and 10000");
        }
        if (monitorInterval.isNegative() || monitorInterval.isZero()) {
            throw new IllegalArgumentException("the monitor interval must be positive");
        }
        if (statementTimeout.filter(t -> t.toMillis() < 1000).isPresent()
                || idleInTransactionTimeout.filter(t -> t.toMillis() < 1000).isPresent()) {
            throw new IllegalArgumentException(
                    "shared.statement-timeout and shared.idle-in-transaction-timeout must be at least 1s");
        }
    }

    public SharedServerConfig withPlacement(int newTenantsPerServer, int newMaxConnections) {
        return new SharedServerConfig(serversDir, cacheDir, user, cgroups, startTimeout, newTenantsPerServer, serverCpu,
                serverMemoryMb, serverDiskMb, newMaxConnections, monitorInterval, statementTimeout,
                idleInTransactionTimeout);
    }
}
