package io.palisade.spi;

/**
 * Point-in-time resource use of one instance; -1 where a driver cannot tell. {@code connections} counts the tenant's
 * server sessions (the shared rungs tell it; a server of its own counts it in its own views).
 */
public record InstanceStats(
        boolean running, long pid, long uptimeSeconds, long cpuMillis, long memoryBytes, long diskBytes, int connections) {
    public InstanceStats(boolean running, long pid, long uptimeSeconds, long cpuMillis, long memoryBytes, long diskBytes) {
        this(running, pid, uptimeSeconds, cpuMillis, memoryBytes, diskBytes, -1);
    }
}
