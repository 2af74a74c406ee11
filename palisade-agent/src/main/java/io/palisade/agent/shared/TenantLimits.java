package io.palisade.agent.shared;

import io.palisade.spi.Plan;
import java.time.Duration;

/**
 * What a plan means for one tenant on a shared server: its own connection limit (always well below the server's), the
 * defaults of its timeouts, its cap on temporary files and the private memory its sessions may hold together. The
 * timeouts are role defaults a tenant may lower but not escape: the server monitor cuts off sessions that outlive them
 * (plus a grace second), whatever the session set; likewise it ends the largest session of a tenant over its memory.
 */
public record TenantLimits(
        int connections, Duration statementTimeout, Duration idleInTransactionTimeout, long tempFileLimitKb,
        long memoryBytes) {
    public TenantLimits(int connections, Duration statementTimeout, Duration idleInTransactionTimeout,
            long tempFileLimitKb) {
        this(connections, statementTimeout, idleInTransactionTimeout, tempFileLimitKb, DEFAULT_MEMORY_BYTES);
    }

    /** The memory budget of a tenant recorded before budgets existed: a nano plan's. */
    static final long DEFAULT_MEMORY_BYTES = 256L << 20;

    public static TenantLimits of(Plan plan, int serverMaxConnections) {
        int connections = Math.max(5, Math.min(plan.memoryMb() / 16, serverMaxConnections / 4));
        Duration statement = Duration.ofSeconds(Math.min(300, 30L * plan.memoryMb() / 256));
        Duration idleInTransaction = Duration.ofSeconds(60);
        long tempKb = (long) plan.diskMb() * 1024 / 4;
        return new TenantLimits(connections, statement, idleInTransaction, tempKb, (long) plan.memoryMb() << 20);
    }

    /** The plan's limits, with the timeouts the operator set for every new tenant of the shared servers, if any. */
    public static TenantLimits of(Plan plan, SharedServerConfig config) {
        TenantLimits limits = of(plan, config.maxConnections());
        return new TenantLimits(limits.connections(), config.statementTimeout().orElse(limits.statementTimeout()),
                config.idleInTransactionTimeout().orElse(limits.idleInTransactionTimeout()), limits.tempFileLimitKb(),
                limits.memoryBytes());
    }
}
