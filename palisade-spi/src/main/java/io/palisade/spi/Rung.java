package io.palisade.spi;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The four rungs of the isolation ladder, cheapest last, each with what it isolates and what it does not. One source for
 * the health endpoint's rungs table and the README's.
 */
public enum Rung {
    VM("vm",
            "own vCPUs, capped (cgroup on QEMU)",
            "own guest RAM, capped",
            "own volume; IOPS and bandwidth caps",
            "own guest kernel",
            "own (inside the guest)",
            "own",
            "this tenant only",
            "this tenant only: the guest holds no other tenant's secret",
            "yes: to disk after idling, woken by the next connection"),
    PROCESS("process",
            "own server process, capped (cgroup)",
            "own server process, capped (cgroup)",
            "own capped volume (ext4 image of the plan's disk_mb, WAL on a second one) where the host can loop-mount;"
                    + " no IO cap",
            "shared host kernel",
            "shared host page cache (charged to its cgroup)",
            "own",
            "this tenant only",
            "this tenant's server; all process-rung servers run as one OS user",
            "no; an idle server keeps its memory"),
    DATABASE("database",
            Shared.CPU,
            Shared.RAM,
            Shared.BY_TENANTS,
            Shared.KERNEL,
            Shared.PAGE_CACHE,
            Shared.BY_TENANTS,
            Shared.CRASH,
            "this tenant's database only; role and database names of neighbours are visible in pg_roles/pg_database",
            Shared.SUSPEND),
    SCHEMA("schema",
            Shared.CPU,
            Shared.RAM,
            Shared.BY_TENANTS,
            Shared.KERNEL,
            Shared.PAGE_CACHE,
            Shared.BY_TENANTS,
            Shared.CRASH,
            "this tenant's schema only; neighbours' object names (not data) are visible in pg_catalog; advisory "
                    + "lock keys and LISTEN/NOTIFY channels are shared by the database (no secrets in NOTIFY payloads)",
            Shared.SUSPEND);

    /** What the two shared rungs have in common. */
    private static final class Shared {
        static final String CPU = "shared by the server's tenants (the server is capped as a whole)";
        static final String RAM = "shared by the server's tenants (shared_buffers; the server is capped as a whole)";
        static final String BY_TENANTS = "shared by the server's tenants";
        static final String KERNEL = "shared host kernel";
        static final String PAGE_CACHE = "shared (one shared_buffers a server)";
        static final String CRASH = "every tenant on the same shared server, until it restarts (seconds)";
        static final String SUSPEND = "no, and not needed: an idle tenant holds no process or memory of its own";
    }

    private final String wireName;
    private final Map<String, String> isolation;
    private final String suspend;

    Rung(String wireName, String cpu, String ram, String io, String kernel, String pageCache, String wal,
            String crashBlastRadius, String credentialLeak, String suspend) {
        this.wireName = wireName;
        Map<String, String> facts = new LinkedHashMap<>();
        facts.put("cpu", cpu);
        facts.put("ram", ram);
        facts.put("io", io);
        facts.put("kernel", kernel);
        facts.put("page_cache", pageCache);
        facts.put("wal", wal);
        facts.put("crash_blast_radius", crashBlastRadius);
        facts.put("credential_leak", credentialLeak);
        this.isolation = java.util.Collections.unmodifiableMap(facts);
        this.suspend = suspend;
    }

    /** The name in the API ({@code isolation}). */
    public String wireName() {
        return wireName;
    }

    /** What the rung does and does not isolate, by dimension (cpu, ram, io, kernel, page_cache, wal, …), in order. */
    public Map<String, String> isolation() {
        return isolation;
    }

    /** Whether and how an idle database on this rung is suspended. */
    public String suspend() {
        return suspend;
    }

    /** The wire name, so that messages read {@code the schema rung}. */
    @Override
    public String toString() {
        return wireName;
    }

    public static Rung fromWire(String name) {
        for (Rung rung : values()) {
            if (rung.wireName.equals(name)) {
                return rung;
            }
        }
        throw PalisadeException.invalid("unknown isolation '" + name + "'; the rungs are vm, process, database, schema");
    }

    /** The rungs table as Markdown (README). */
    public static String markdownTable() {
        List<String> dimensions = List.copyOf(VM.isolation.keySet());
        StringBuilder out = new StringBuilder("| rung | " + String.join(" | ", dimensions.stream()
                .map(d -> d.replace('_', ' ')).toList()) + " | suspend |\n");
        out.append("|---".repeat(dimensions.size() + 2)).append("|\n");
        for (Rung rung : values()) {
            out.append("| `").append(rung.wireName).append("` | ");
            for (String dimension : dimensions) {
                out.append(rung.isolation.get(dimension)).append(" | ");
            }
            out.append(rung.suspend).append(" |\n");
        }
        return out.toString();
    }
}
