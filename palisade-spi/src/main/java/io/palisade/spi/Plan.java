package io.palisade.spi;

/**
 * The resources of one instance. {@code iops} and {@code bandwidthMbps} of 0 mean unlimited.
 */
public record Plan(String name, int cpu, int memoryMb, int diskMb, int iops, int bandwidthMbps) {
    public static final int MIN_MEMORY_MB = 128;
    public static final int MAX_MEMORY_MB = 65_536;
    public static final int MAX_CPU = 64;

    public Plan {
        if (name == null || name.isBlank()) {
            throw PalisadeException.invalid("plan name is empty");
        }
        if (cpu < 1 || cpu > MAX_CPU) {
            throw PalisadeException.invalid("cpu must be between 1 and " + MAX_CPU + ", got " + cpu);
        }
        if (memoryMb < MIN_MEMORY_MB || memoryMb > MAX_MEMORY_MB) {
            throw PalisadeException.invalid(
                    "memory_mb must be between " + MIN_MEMORY_MB + " and " + MAX_MEMORY_MB + ", got " + memoryMb);
        }
        if (diskMb < 64 || diskMb > 4_194_304) {
            throw PalisadeException.invalid("disk_mb must be between 64 and 4194304, got " + diskMb);
        }
        if (iops < 0 || bandwidthMbps < 0) {
            throw PalisadeException.invalid("iops and bandwidth caps must not be negative");
        }
    }

    public static final Plan NANO = new Plan("nano", 1, 256, 1024, 500, 50);
    public static final Plan SMALL = new Plan("small", 1, 512, 4096, 1000, 100);
    public static final Plan MEDIUM = new Plan("medium", 2, 1024, 16384, 3000, 200);
    public static final Plan LARGE = new Plan("large", 4, 4096, 65536, 10000, 400);

    public static java.util.List<Plan> named() {
        return java.util.List.of(NANO, SMALL, MEDIUM, LARGE);
    }

    public static Plan byName(String name) {
        for (Plan plan : named()) {
            if (plan.name.equals(name)) {
                return plan;
            }
        }
        throw PalisadeException.invalid("unknown plan '" + name + "'; known plans: nano, small, medium, large");
    }

    public Plan withCpuAndMemory(Integer newCpu, Integer newMemoryMb) {
        return new Plan(
                newCpu == null && newMemoryMb == null ? name : "custom",
                newCpu == null ? cpu : newCpu,
                newMemoryMb == null ? memoryMb : newMemoryMb,
                diskMb,
                iops,
                bandwidthMbps);
    }
}
