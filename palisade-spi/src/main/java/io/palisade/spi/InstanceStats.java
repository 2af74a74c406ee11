package io.palisade.spi;

/** Point-in-time resource use of one instance; -1 where a driver cannot tell. */
public record InstanceStats(boolean running, long pid, long uptimeSeconds, long cpuMillis, long memoryBytes, long diskBytes) {}
