package io.palisade.bench;

import io.palisade.bench.vm.Aggressor;
import io.palisade.bench.vm.BenchRungs;
import io.palisade.bench.vm.FixedRateLoad;
import io.palisade.bench.vm.HostCpu;
import io.palisade.bench.vm.ProcCpu;
import io.palisade.bench.vm.Tenant;
import io.palisade.spi.Plan;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Issue 3's noisy-neighbour benchmark: a victim tenant runs a small indexed SELECT at a fixed rate, alone and while an
 * aggressor tenant burns CPU (two spinning sessions), IO (an INSERT … SELECT + CHECKPOINT loop), or both. Both
 * tenants on {@code vm} (1 vCPU each, per-VM cgroup and IO throttle), then both on {@code process} without caps (the
 * shared-machine baseline). "Alone" means the aggressor's database exists but is idle. The conditions are interleaved
 * in short windows over several rounds, so that background load on the host (other work on a shared machine) falls on
 * all of them alike instead of on whichever ran at the wrong moment.
 */
final class NoisyNeighbourBench {
    static final int RATE = 50;
    static final int ROUNDS = 3;
    static final Duration WINDOW = Duration.ofSeconds(5);
    static final Duration AGGRESSOR_WARM_UP = Duration.ofSeconds(2);
    static final int CPU_SESSIONS = 2;
    static final Plan PLAN = Plan.NANO;
    private static final String VM_POOL = "10.216.2.0/24";
    private static final String ALONE = "none (alone)";
    private static final List<String> CONDITIONS = List.of(ALONE, "cpu", "io", "cpu + io");

    private NoisyNeighbourBench() {}

    /** The pooled windows of one condition on one rung. Not thread-safe. */
    private static final class Condition {
        final List<Double> latencies = new ArrayList<>();
        final List<Double> hostBusy = new ArrayList<>();
        final List<Double> aggressorCpu = new ArrayList<>();
        long ioRounds;
        long errors;

        Stats stats() {
            Stats stats = new Stats();
            latencies.forEach(stats::add);
            return stats;
        }

        double meanHostBusy() {
            return mean(hostBusy);
        }

        private static double mean(List<Double> values) {
            return values.stream().mapToDouble(Double::doubleValue).filter(b -> b >= 0).average().orElse(-1);
        }

        String work(String kind) {
            if (kind.equals(ALONE)) {
                return String.format("%.0f %% CPU (idle)", mean(aggressorCpu));
            }
            return String.format("%.0f %% CPU%s%s", mean(aggressorCpu),
                    kind.contains("io") ? String.format(", %.0f MB inserted per window", ioRounds * 5.7 / ROUNDS) : "",
                    errors > 0 ? ", " + errors + " session errors" : "");
        }
    }

    static void run() throws Exception {
        String loadBefore = VmBench.loadAverage();
        long benchStart = System.nanoTime();
        Map<String, Map<String, Condition>> results = new LinkedHashMap<>();
        Map<String, String> caps = new LinkedHashMap<>();
        String[] accelerator = {"?"};
        results.put("vm", measure("vm", true, caps, accelerator));
        results.put("process", measure("process", false, caps, accelerator));
        String loadAfter = VmBench.loadAverage();

        System.out.println();
        System.out.println("## noisy neighbour (issue 3)");
        System.out.println("machine: " + Machine.describe());
        System.out.println("accelerator: " + accelerator[0] + "; host load average (1/5/15 min) before: " + loadBefore
                + ", after: " + loadAfter + "; whole run " + Math.round((System.nanoTime() - benchStart) / 1e9) + " s");
        System.out.println("victim: " + RATE + " queries/s of `SELECT v FROM victim WHERE id = $1` (10k rows, primary"
                + " key) over one connection, latency from each query's scheduled start; conditions interleaved, "
                + ROUNDS + " rounds × " + WINDOW.toSeconds() + " s windows each, pooled ("
                + ROUNDS * WINDOW.toSeconds() * RATE + " queries per condition). aggressor: cpu = " + CPU_SESSIONS
                + " sessions spinning count(*) over generate_series (8 s statement timeout); io = 1 session looping"
                + " INSERT … SELECT of 25k rows (~6 MB) + CHECKPOINT, TRUNCATE every 12th round; started "
                + AGGRESSOR_WARM_UP.toSeconds() + " s before its window. alone = aggressor database idle.");
        System.out.println();
        System.out.println("| rung | caps | aggressor | victim p50 ms | p99 ms | max ms | p99 / alone p99 |"
                + " host CPU busy, % of 1 core | aggressor's server: CPU (% of 1 core), writes |");
        System.out.println("|---|---|---|---:|---:|---:|---:|---:|---|");
        for (var rung : results.entrySet()) {
            Stats alone = rung.getValue().get(ALONE).stats();
            for (var condition : rung.getValue().entrySet()) {
                Stats victim = condition.getValue().stats();
                double busy = condition.getValue().meanHostBusy();
                System.out.printf("| %s | %s | %s | %.1f | %.1f | %.1f | %.1f× | %s | %s |%n", rung.getKey(),
                        caps.get(rung.getKey()), condition.getKey(), victim.percentile(50), victim.percentile(99),
                        victim.max(), victim.percentile(99) / alone.percentile(99),
                        busy < 0 ? "?" : String.format("%.0f", busy),
                        condition.getValue().work(condition.getKey()));
            }
        }
        System.out.println();
        for (var rung : results.entrySet()) {
            System.out.printf("victim p99 ratio, cpu + io aggressor / alone, %s: %.1f×%n", rung.getKey(),
                    rung.getValue().get("cpu + io").stats().percentile(99)
                            / rung.getValue().get(ALONE).stats().percentile(99));
        }
        System.out.println();
        System.out.println("Under TCG each vm tenant's QEMU spends host CPU on binary translation, and the host kernel"
                + " does the VMs' disk writeback outside their cgroups, so on a 2-core host the two VMs still compete"
                + " for host CPU; the process rung's victim runs natively.");
    }

    private static Map<String, Condition> measure(String rung, boolean vm, Map<String, String> caps,
            String[] accelerator) throws Exception {
        Map<String, Condition> conditions = new LinkedHashMap<>();
        CONDITIONS.forEach(c -> conditions.put(c, new Condition()));
        try (BenchRungs rungs = new BenchRungs("bench-noisy-" + rung, VM_POOL, false)) {
            VmBench.progress("noisy/" + rung + ": provisioning victim and aggressor (" + PLAN.name() + " plan)");
            Tenant victim = vm ? rungs.provisionVm("victim", PLAN) : rungs.provisionProcess("victim", PLAN);
            Tenant aggressorTenant =
                    vm ? rungs.provisionVm("aggressor", PLAN) : rungs.provisionProcess("aggressor", PLAN);
            if (vm) {
                accelerator[0] = victim.instance().details().getOrDefault("accelerator", "?");
            }
            caps.put(rung, vm
                    ? PLAN.cpu() + " vCPU, " + PLAN.memoryMb() + " MiB, " + PLAN.iops() + " IOPS, "
                            + PLAN.bandwidthMbps() + " MB/s per VM"
                    : "none (no cgroup)");
            rungs.adminExecute(aggressorTenant, "GRANT pg_checkpoint TO app");
            FixedRateLoad.prepare(victim);
            Aggressor.prepare(aggressorTenant);
            FixedRateLoad.run(victim, RATE, Duration.ofSeconds(2)); // warm the victim's cache and connection path

            long aggressorPid = Long.parseLong(aggressorTenant.instance().details().get("pid"));
            for (int round = 1; round <= ROUNDS; round++) {
                for (String kind : CONDITIONS) {
                    Condition condition = conditions.get(kind);
                    if (kind.equals(ALONE)) {
                        window(rung, round, kind, victim, condition, aggressorPid);
                        continue;
                    }
                    int cpuSessions = kind.contains("cpu") ? CPU_SESSIONS : 0;
                    Aggressor aggressor = Aggressor.start(aggressorTenant, cpuSessions, kind.contains("io"));
                    try {
                        Thread.sleep(AGGRESSOR_WARM_UP.toMillis());
                        window(rung, round, kind, victim, condition, aggressorPid);
                    } finally {
                        aggressor.close();
                    }
                    condition.ioRounds += aggressor.ioRounds();
                    condition.errors += aggressor.errors();
                }
            }
            VmBench.progress("noisy/" + rung + ": cleaning up");
        }
        return conditions;
    }

    /**
     * One measured window of the victim. The aggressor's CPU is that of its server's process tree (QEMU with all its
     * threads, or the postmaster and its backends), whose sessions stay connected for the whole window.
     */
    private static void window(String rung, int round, String kind, Tenant victim, Condition condition,
            long aggressorPid) throws Exception {
        HostCpu before = HostCpu.read();
        long aggressorBefore = ProcCpu.treeMillis(aggressorPid);
        long start = System.nanoTime();
        double[] latencies = FixedRateLoad.run(victim, RATE, WINDOW);
        double busy = HostCpu.read().busyPercentSince(before);
        // a backend of the previous window that exits meanwhile takes its CPU time out of the tree: clamp at 0
        double aggressorCpu = Math.max(0, ProcCpu.treeMillis(aggressorPid) - aggressorBefore) / 10.0
                / ((System.nanoTime() - start) / 1e9);
        condition.aggressorCpu.add(aggressorCpu);
        Stats stats = new Stats();
        for (double latency : latencies) {
            stats.add(latency);
            condition.latencies.add(latency);
        }
        condition.hostBusy.add(busy);
        VmBench.progress(String.format("noisy/%s round %d, aggressor %s: victim p50 %.1f ms, p99 %.1f ms, max %.1f ms;"
                + " host CPU busy %.0f %%, aggressor's server %.0f %%", rung, round, kind, stats.percentile(50),
                stats.percentile(99), stats.max(), busy, aggressorCpu));
    }
}
