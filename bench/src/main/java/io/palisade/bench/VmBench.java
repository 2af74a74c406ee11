package io.palisade.bench;

import io.palisade.bench.vm.BenchRungs;
import io.palisade.bench.vm.PgBench;
import io.palisade.bench.vm.ProcMemory;
import io.palisade.bench.vm.Tenant;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.Plan;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Issue 3's benchmarks of the {@code vm} rung: cold create → first query with the boot breakdown, pgbench select-only
 * TPS in a vm database against a process database (same plan, same run), and the host memory of one idle database VM
 * against one idle process database.
 */
final class VmBench {
    static final int CREATES = 10;
    static final int PGBENCH_SECONDS = 10;
    static final int[] PGBENCH_CLIENTS = {1, 4};
    /** 1 vCPU, 256 MiB: the nano plan's CPU and memory (its disk and IO caps apply to the vm rung only). */
    static final Plan PLAN = Plan.NANO;
    private static final String VM_POOL = "10.216.1.0/24";

    private VmBench() {}

    static void run() throws Exception {
        String loadBefore = loadAverage();
        long benchStart = System.nanoTime();
        Stats total = new Stats();
        Map<String, Stats> phases = new LinkedHashMap<>();
        Map<String, Stats> steps = new LinkedHashMap<>();
        String accelerator = "?";
        int retries = 0;
        Map<String, PgBench.Result> vmTps = new LinkedHashMap<>();
        Map<String, PgBench.Result> processTps = new LinkedHashMap<>();
        ProcMemory.Usage vmMemory;
        ProcMemory.Usage processMemory;
        double vmIdleCpu;
        double processIdleCpu;
        String processCaps;
        // 1. cold creates: the boot a template build, a restart or a restore makes (creates clone a template by
        // default; bench/run snapshot measures those)
        try (BenchRungs rungs = new BenchRungs("bench-vm-cold", VM_POOL, true).coldBootOnly()) {
            progress("cold creates: 1 warm-up + " + CREATES + " measured (" + PLAN.name() + " plan)");
            rungs.destroy(createAndQuery(rungs, "warm"));
            List<Map<String, String>> details = new ArrayList<>();
            for (int i = 0; i < CREATES; i++) {
                long start = System.nanoTime();
                Tenant tenant = createAndQuery(rungs, "cold" + i);
                double ms = (System.nanoTime() - start) / 1e6;
                total.add(ms);
                details.add(tenant.instance().details());
                accelerator = tenant.instance().details().getOrDefault("accelerator", "?");
                retries += Integer.parseInt(tenant.instance().details().getOrDefault("watchdog_retries", "0"));
                progress(String.format("  create %d: %.0f ms (QEMU start → PG answers %s ms)", i, ms,
                        tenant.instance().details().get("boot_pg_answers_ms")));
                rungs.destroy(tenant);
            }
            breakdown(details, phases, steps);
        }
        try (BenchRungs rungs = new BenchRungs("bench-vm", VM_POOL, true)) {
            // 2. idle memory, then 3. pgbench, on one vm and one process database of the same plan
            progress("provisioning one vm and one process database for memory and pgbench");
            Tenant vm = rungs.provisionVm("tps", PLAN);
            Tenant process = rungs.provisionProcess("tps", PLAN);
            processCaps = rungs.processCapsDescription();
            query(vm);
            query(process);
            progress("idle 5 s, then memory");
            InstanceStats vmBefore = rungs.vm().stats(vm.id());
            InstanceStats processBefore = rungs.process().stats(process.id());
            long idleStart = System.nanoTime();
            Thread.sleep(5000);
            double idleSeconds = (System.nanoTime() - idleStart) / 1e9;
            InstanceStats vmAfter = rungs.vm().stats(vm.id());
            InstanceStats processAfter = rungs.process().stats(process.id());
            vmIdleCpu = cpuPercent(vmBefore, vmAfter, idleSeconds);
            processIdleCpu = cpuPercent(processBefore, processAfter, idleSeconds);
            vmMemory = ProcMemory.of(vmAfter.pid());
            processMemory = ProcMemory.ofTree(Long.parseLong(process.instance().details().get("pid")));
            progress("pgbench -i -s 1 in both");
            PgBench.initialise(vm, 1);
            PgBench.initialise(process, 1);
            for (int clients : PGBENCH_CLIENTS) {
                progress("pgbench -S -c " + clients + " -T " + PGBENCH_SECONDS + " on vm");
                vmTps.put(Integer.toString(clients), PgBench.selectOnly(vm, clients, PGBENCH_SECONDS));
                progress("pgbench -S -c " + clients + " -T " + PGBENCH_SECONDS + " on process");
                processTps.put(Integer.toString(clients), PgBench.selectOnly(process, clients, PGBENCH_SECONDS));
            }
            progress("cleaning up");
        }
        String loadAfter = loadAverage();

        System.out.println();
        System.out.println("## vm rung (issue 3)");
        System.out.println("machine: " + Machine.describe());
        System.out.println("accelerator: " + accelerator + "; plan " + PLAN.name() + " (" + PLAN.cpu() + " vCPU, "
                + PLAN.memoryMb() + " MiB); host load average (1/5/15 min) before: " + loadBefore + ", after: "
                + loadAfter + "; whole run " + Math.round((System.nanoTime() - benchStart) / 1e9) + " s");
        System.out.println();
        System.out.println("### cold create (boot, no template clone) → first query through the instance endpoint ("
                + total.count() + " creates, watchdog retries: " + retries + ")");
        System.out.println();
        System.out.println("| what | p50 ms | p95 ms | max ms |");
        System.out.println("|---|---:|---:|---:|");
        row("provision → first tenant query (SELECT 1 over TCP, SCRAM)", total);
        System.out.println();
        System.out.println("| boot phase (p50 over the creates) | from QEMU start, ms | step, ms |");
        System.out.println("|---|---:|---:|");
        for (String phase : phases.keySet()) {
            boolean fromQemu = !phase.startsWith("(") || phase.contains("marker");
            System.out.printf("| %s | %s | %.0f |%n", phase,
                    fromQemu ? String.format("%.0f", phases.get(phase).percentile(50)) : "",
                    steps.get(phase).percentile(50));
        }
        System.out.println();
        System.out.println("### pgbench select-only (-S, scale 1, " + PGBENCH_SECONDS
                + " s per run, pgbench 15 on the host over TCP)");
        System.out.println("process rung: " + processCaps);
        System.out.println();
        System.out.println(
                "| clients | vm TPS | process TPS | vm / process | vm avg latency ms | process avg latency ms |");
        System.out.println("|---:|---:|---:|---:|---:|---:|");
        for (String clients : vmTps.keySet()) {
            PgBench.Result v = vmTps.get(clients);
            PgBench.Result p = processTps.get(clients);
            System.out.printf("| %s | %.0f | %.0f | %.2f | %.2f | %.2f |%n", clients, v.tps(), p.tps(),
                    v.tps() / p.tps(), v.latencyAverageMs(), p.latencyAverageMs());
        }
        System.out.println();
        System.out.println("### host memory of one idle database (" + PLAN.memoryMb() + " MiB plan, idle ~5 s after "
                + "create and one query; the vm created as by default, by clone)");
        System.out.println();
        System.out.println("| rung | processes | RSS MiB | PSS MiB | idle CPU % of one core |");
        System.out.println("|---|---:|---:|---:|---:|");
        memoryRow("vm (QEMU process)", vmMemory, vmIdleCpu);
        memoryRow("process (postmaster + children)", processMemory, processIdleCpu);
        System.out.println();
        System.out.println("RSS sums count shared memory (shared_buffers) once per PostgreSQL process; PSS shares it"
                + " out. The VM's RSS includes the guest's touched RAM and QEMU's TCG translation cache.");
    }

    /** Provisions a vm tenant and runs its first query; the caller destroys it. */
    private static Tenant createAndQuery(BenchRungs rungs, String name) throws Exception {
        Tenant tenant = rungs.provisionVm(name, PLAN);
        query(tenant);
        return tenant;
    }

    private static void query(Tenant tenant) throws Exception {
        try (Connection c = tenant.connect();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT 1")) {
            rs.next();
        }
    }

    /**
     * Per-phase p50 from QEMU start and per-step p50 (difference to the previous boot phase of the same create). The
     * driver probes only after the guest's {@code ready} marker, so that is a step of every boot.
     */
    private static void breakdown(List<Map<String, String>> details, Map<String, Stats> phases,
            Map<String, Stats> steps) {
        String[][] boot = {
            {"QEMU start → initramfs marker (QEMU + kernel boot)", "boot_initramfs_ms"},
            {"→ init marker (initramfs: mounts, switch_root)", "boot_init_ms"},
            {"→ postgres-started marker (init: network, data volume)", "boot_postgres_started_ms"},
            {"→ ready marker (PostgreSQL's start: recovery, postmaster.pid says ready)", "boot_ready_ms"},
            {"→ PostgreSQL answers the protocol probe (through the forward, a backend forked)", "boot_pg_answers_ms"},
        };
        String[][] other = {
            {"(volume copy, before QEMU)", "volume_copy_ms"},
            {"(network namespace + veth + tap, before QEMU)", "network_ms"},
            {"(credentials after boot: management login, tenant SCRAM verifier, secret rotation)", "credentials_ms"},
            {"(driver provision total)", "create_ms"},
        };
        add(phases, steps, other[0][0], details, other[0][1], null);
        add(phases, steps, other[1][0], details, other[1][1], null);
        String previous = null;
        for (String[] phase : boot) {
            add(phases, steps, phase[0], details, phase[1], previous);
            previous = phase[1];
        }
        add(phases, steps, other[2][0], details, other[2][1], null);
        add(phases, steps, other[3][0], details, other[3][1], null);
    }

    private static void add(Map<String, Stats> phases, Map<String, Stats> steps, String label,
            List<Map<String, String>> details, String key, String previousKey) {
        Stats at = new Stats();
        Stats step = new Stats();
        for (Map<String, String> d : details) {
            if (!d.containsKey(key)) {
                continue;
            }
            double ms = Double.parseDouble(d.get(key));
            at.add(ms);
            step.add(previousKey == null ? ms : ms - Double.parseDouble(d.getOrDefault(previousKey, "0")));
        }
        if (at.count() > 0) {
            phases.put(label, at);
            steps.put(label, step);
        }
    }

    private static double cpuPercent(InstanceStats before, InstanceStats after, double seconds) {
        if (before.cpuMillis() < 0 || after.cpuMillis() < 0) {
            return -1;
        }
        return (after.cpuMillis() - before.cpuMillis()) / 10.0 / seconds;
    }

    private static void row(String name, Stats stats) {
        System.out.printf(
                "| %s | %.0f | %.0f | %.0f |%n", name, stats.percentile(50), stats.percentile(95), stats.max());
    }

    private static void memoryRow(String name, ProcMemory.Usage usage, double idleCpu) {
        System.out.printf("| %s | %d | %.0f | %.0f | %s |%n", name, usage.processes(), usage.rssBytes() / 1048576.0,
                usage.pssBytes() / 1048576.0, idleCpu < 0 ? "n/a" : String.format("%.1f", idleCpu));
    }

    static String loadAverage() {
        try {
            String[] parts = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return parts[0] + " / " + parts[1] + " / " + parts[2];
        } catch (Exception e) {
            return "?";
        }
    }

    static void progress(String message) {
        System.err.println("bench: " + message);
    }
}
