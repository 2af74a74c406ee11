package io.palisade.bench;

import io.palisade.bench.backup.PalisadeApi;
import io.palisade.bench.ladder.ApiTenant;
import io.palisade.bench.ladder.HostMemory;
import io.palisade.bench.vm.HostCpu;
import io.palisade.host.Processes;
import io.palisade.server.PalisadeServer;
import io.palisade.server.ServerConfig;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Issue 12's benchmark, the whole ladder in one run of one in-process palisade (proxy on, backups off):
 * <ol>
 *   <li>create → first {@code SELECT 1} through the proxy with the returned URL on each rung, on a nearly empty host,
 *       and the host memory and disk one idle tenant costs on each rung (a shared rung: the shared server's growth from
 *       its empty state over the first tenants, divided by their number);</li>
 *   <li>provisioning up to {@value #TOTAL_LABEL} tenants as a mix of the four rungs, most vm tenants then suspended:
 *       the time it took, the memory of palisade and every server and QEMU, idle CPU, and whether a random sample of
 *       tenants (every rung among them) still answers through the proxy;</li>
 *   <li>the noisy neighbour on a shared server and on the {@code process} rung ({@link LadderNeighbours});</li>
 *   <li>deleting every tenant.</li>
 * </ol>
 * Counts can be set with {@code -Dbench.ladder.schema|database|process|vm=N}; {@code -Dbench.quick=true} runs the same
 * steps at toy sizes, for development.
 */
final class LadderBench {
    private static final boolean QUICK = Boolean.getBoolean("bench.quick");
    private static final String TOTAL_LABEL = "1,000";
    static final List<String> RUNGS = List.of("schema", "database", "process", "vm");
    static final Map<String, Integer> TARGET = Map.of(
            "schema", Integer.getInteger("bench.ladder.schema", QUICK ? 30 : 450),
            "database", Integer.getInteger("bench.ladder.database", QUICK ? 30 : 450),
            "process", Integer.getInteger("bench.ladder.process", QUICK ? 4 : 80),
            "vm", Integer.getInteger("bench.ladder.vm", QUICK ? 2 : 20));
    /** The first creates of each rung, on a nearly empty host: the create latency and idle-memory measurements. */
    static final Map<String, Integer> MEASURED = Map.of(
            "schema", QUICK ? 20 : 100, "database", QUICK ? 20 : 100, "process", QUICK ? 3 : 20, "vm", QUICK ? 1 : 5);
    static final int VM_AWAKE = QUICK ? 1 : 2;
    static final int SAMPLE = QUICK ? 12 : 50;
    static final int NOISY_ROUNDS = QUICK ? 1 : 3;
    static final Duration SETTLE = Duration.ofSeconds(QUICK ? 2 : 5);
    static final Duration IDLE_WINDOW = Duration.ofSeconds(QUICK ? 3 : 10);
    /**
     * Provisioning stops creating at this time after the start (the mix stays proportional: it is shuffled), so that
     * the whole run stays well under 15 minutes on a busy 2-core host; the report says when it did.
     */
    static final Duration FILL_BUDGET = Duration.ofSeconds(Long.getLong("bench.ladder.fill-budget-seconds", 480));
    private static final String VM_POOL = "10.221.0.0/24";

    private LadderBench() {}

    /** Idle cost of one tenant of a rung. */
    record IdleCost(int tenants, double rssMiB, double pssMiB, double diskMiB, String how) {}

    /** Everything the run measured, for {@link LadderReport}. */
    static final class Results {
        String accelerator = "?";
        String caps = "?";
        final Map<String, Stats> emptyAnswer = new LinkedHashMap<>();
        final Map<String, Stats> emptyQuery = new LinkedHashMap<>();
        final Map<String, Stats> allAnswer = new LinkedHashMap<>();
        final Map<String, Stats> allQuery = new LinkedHashMap<>();
        final Map<String, IdleCost> idle = new LinkedHashMap<>();
        double sharedEmptyPssMiB;
        double sharedEmptyRssMiB;
        final Map<String, Integer> provisioned = new LinkedHashMap<>();
        double provisionSeconds;
        /** Creates the fill left out when it ran out of {@link #FILL_BUDGET} (0: none). */
        int leftOut;
        double suspendSeconds;
        int suspended;
        HostMemory atScale;
        /** Allocated disk at scale: shared servers, process tenants, vm tenants (with the suspended ones' memory). */
        final Map<String, Long> diskAtScale = new LinkedHashMap<>();
        long memAvailableDropMiB;
        final Map<HostMemory.Kind, Double> idleCpu = new LinkedHashMap<>();
        double idleHostBusy;
        int sharedServers;
        final Map<String, int[]> sample = new LinkedHashMap<>();
        final Stats sampleMillis = new Stats();
        final List<String> sampleFailures = new ArrayList<>();
        final List<LadderNeighbours.Result> neighbours = new ArrayList<>();
        final Map<String, Stats> deletes = new LinkedHashMap<>();
        double deleteSeconds;
        /** Creates that failed, by rung: the run goes on without them and reports each. */
        final Map<String, List<String>> createFailures = new LinkedHashMap<>();
        /** Wall time of each phase of the run, in seconds. */
        final Map<String, Long> phaseSeconds = new LinkedHashMap<>();

        int total() {
            return provisioned.values().stream().mapToInt(Integer::intValue).sum();
        }
    }

    static void run() throws Exception {
        String loadBefore = VmBench.loadAverage();
        long benchStart = System.nanoTime();
        Results results = new Results();
        Path work = TestingDirectories.newWorkDir("bench-ladder");
        Path data = work.resolve("data");
        String key = "pk_bench_" + Long.toHexString(System.nanoTime());
        long availableBefore = DensityBench.memAvailableKiB();
        try (PalisadeServer server = PalisadeServer.start(ServerConfig.from(Map.of(
                        "server.data-dir", data.toString(),
                        "api.port", "0",
                        "proxy.port", "0",
                        "backup.enabled", "false",
                        "vm.network-pool", VM_POOL,
                        "vm.image-dir", TestingDirectories.repoDir().resolve(".cache/guest/current").toString())),
                Optional.of(key))) {
            PalisadeApi api = new PalisadeApi("http://127.0.0.1:" + server.apiPort(), key);
            var probes = server.service().probes();
            results.accelerator = probes.get("vm").usable() ? probes.get("vm").accelerator()
                    : "vm rung unusable: " + probes.get("vm").reason();
            results.caps = "process: " + probes.get("process").reason() + "; shared: " + probes.get("schema").reason();
            Ladder ladder = new Ladder(api, results);
            Phases phases = new Phases(results);
            phases.run("create → first query and idle cost on a nearly empty host", () -> emptyHost(ladder, data,
                    results));
            long fillDeadline = benchStart + FILL_BUDGET.toNanos();
            phases.run("provisioning the rest of the mix", () -> fill(ladder, results, fillDeadline));
            phases.run("suspending vm tenants", () -> suspendVms(api, ladder, results));
            phases.run("memory and idle CPU at scale", () -> atScale(data, availableBefore, results));
            results.sharedServers = server.sharedServers().serverCount();
            phases.run("reachability sample", () -> sample(ladder, results));
            phases.run("noisy neighbour", () -> neighbours(server, api, ladder, data, results));
            phases.run("deleting every tenant", () -> delete(api, ladder, results));
            server.sharedServers().removeEmptyServers();
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
        LadderReport.print(results, loadBefore, VmBench.loadAverage(),
                Math.round((System.nanoTime() - benchStart) / 1e9));
    }

    /** Runs the phases of the run and records how long each took. Not thread-safe. */
    private record Phases(Results results) {
        interface Phase {
            void run() throws Exception;
        }

        void run(String name, Phase phase) throws Exception {
            long start = System.nanoTime();
            VmBench.progress("ladder: " + name);
            phase.run();
            results.phaseSeconds.put(name, Math.round((System.nanoTime() - start) / 1e9));
        }
    }

    /** Which latency tables a create goes into. */
    private enum Timing {
        /** None: the create that builds a rung's template (kept as a tenant). */
        WARM_UP,
        /** Both: one of the first creates of its rung, on a nearly empty host. */
        EMPTY_HOST,
        /** The whole run's only. */
        MIX
    }

    /** The tenants of the run and their create timings. Not thread-safe. */
    private static final class Ladder {
        final PalisadeApi api;
        final Results results;
        final Map<String, List<ApiTenant>> tenants = new LinkedHashMap<>();
        long provisionNanos;
        int created;

        Ladder(PalisadeApi api, Results results) {
            this.api = api;
            this.results = results;
            for (String rung : RUNGS) {
                tenants.put(rung, new ArrayList<>());
                results.emptyAnswer.put(rung, new Stats());
                results.emptyQuery.put(rung, new Stats());
                results.allAnswer.put(rung, new Stats());
                results.allQuery.put(rung, new Stats());
            }
        }

        /**
         * Creates one tenant and runs its first query, timed as {@code timing} says. A failed create is recorded and
         * the run goes on (null): one vm that does not boot under TCG on a busy host must not lose the whole run.
         */
        ApiTenant create(String rung, Timing timing) {
            long start = System.nanoTime();
            ApiTenant.Created c;
            try {
                c = ApiTenant.create(api, rung, "ladder-" + rung + "-" + tenants.get(rung).size());
            } catch (Exception e) {
                provisionNanos += System.nanoTime() - start;
                results.createFailures.computeIfAbsent(rung, r -> new ArrayList<>()).add(e.getMessage());
                VmBench.progress("ladder: a " + rung + " create failed: " + e.getMessage());
                return null;
            }
            provisionNanos += System.nanoTime() - start;
            tenants.get(rung).add(c.tenant());
            if (timing != Timing.WARM_UP) {
                results.allAnswer.get(rung).add(c.answerMillis());
                results.allQuery.get(rung).add(c.firstQueryMillis());
            }
            if (timing == Timing.EMPTY_HOST) {
                results.emptyAnswer.get(rung).add(c.answerMillis());
                results.emptyQuery.get(rung).add(c.firstQueryMillis());
            }
            if (++created % 100 == 0) {
                VmBench.progress("ladder: " + created + " tenants " + counts());
            }
            return c.tenant();
        }

        /** A create that is measured by nothing (warm-up), then deleted. */
        void warmUp(String rung) throws Exception {
            ApiTenant.Created c = ApiTenant.create(api, rung, "ladder-warm-" + rung);
            api.delete(c.tenant().id());
        }

        Map<String, Integer> counts() {
            Map<String, Integer> counts = new LinkedHashMap<>();
            tenants.forEach((rung, list) -> counts.put(rung, list.size()));
            return counts;
        }

        List<ApiTenant> all() {
            List<ApiTenant> all = new ArrayList<>();
            tenants.values().forEach(all::addAll);
            return all;
        }
    }

    /** 1. Per rung on a nearly empty host: create latency, and what an idle tenant costs. */
    private static void emptyHost(Ladder ladder, Path data, Results results) throws Exception {
        ladder.warmUp("schema");
        ladder.warmUp("database");
        Thread.sleep(SETTLE.toMillis());
        HostMemory before = HostMemory.snapshot(data);
        results.sharedEmptyPssMiB = mib(before.part(HostMemory.Kind.SHARED).usage().pssBytes());
        results.sharedEmptyRssMiB = mib(before.part(HostMemory.Kind.SHARED).usage().rssBytes());
        long diskBefore = diskBytes(data.resolve("shared"));
        for (String rung : List.of("schema", "database")) {
            int n = Math.min(MEASURED.get(rung), TARGET.get(rung));
            VmBench.progress("ladder: " + n + " " + rung + " creates on the empty shared server");
            for (int i = 0; i < n; i++) {
                ladder.create(rung, Timing.EMPTY_HOST);
            }
            Thread.sleep(SETTLE.toMillis());
            HostMemory after = HostMemory.snapshot(data);
            long diskAfter = diskBytes(data.resolve("shared"));
            var grown = after.part(HostMemory.Kind.SHARED).usage();
            var was = before.part(HostMemory.Kind.SHARED).usage();
            results.idle.put(rung, new IdleCost(n, mib(grown.rssBytes() - was.rssBytes()) / n,
                    mib(grown.pssBytes() - was.pssBytes()) / n, mib(diskAfter - diskBefore) / n,
                    "shared server's growth over " + n + " tenants ÷ " + n));
            before = after;
            diskBefore = diskAfter;
        }
        for (String rung : List.of("process", "vm")) {
            int n = Math.min(MEASURED.get(rung), TARGET.get(rung) - 1);
            if (n < 1) {
                continue;
            }
            VmBench.progress("ladder: 1 warm-up + " + n + " " + rung + " creates");
            ladder.create(rung, Timing.WARM_UP); // builds the rung's template; kept as a tenant
            for (int i = 0; i < n; i++) {
                ladder.create(rung, Timing.EMPTY_HOST);
            }
            Thread.sleep(SETTLE.toMillis());
            HostMemory.Part part = HostMemory.snapshot(data).part(
                    rung.equals("vm") ? HostMemory.Kind.VM : HostMemory.Kind.PROCESS);
            int running = part.roots().size();
            if (running == 0) {
                continue;
            }
            long disk = diskBytes(data.resolve(rung.equals("vm") ? "vm" : "instances/process"));
            results.idle.put(rung, new IdleCost(running, mib(part.usage().rssBytes()) / running,
                    mib(part.usage().pssBytes()) / running, mib(disk) / ladder.tenants.get(rung).size(),
                    rung.equals("vm") ? "mean over " + running + " running QEMUs (whole process: guest RAM + TCG)"
                            : "mean over " + running + " postmasters with their children"));
        }
    }

    /**
     * 2. The rest of the mix, interleaved at random (fixed seed), as tenants would arrive, until {@code deadline}
     * ({@link System#nanoTime()}).
     */
    private static void fill(Ladder ladder, Results results, long deadline) {
        List<String> order = new ArrayList<>();
        for (String rung : RUNGS) {
            for (int i = ladder.tenants.get(rung).size(); i < TARGET.get(rung); i++) {
                order.add(rung);
            }
        }
        Collections.shuffle(order, new Random(12));
        VmBench.progress("ladder: provisioning " + order.size() + " more tenants, mixed");
        for (int i = 0; i < order.size(); i++) {
            if (System.nanoTime() > deadline) {
                results.leftOut = order.size() - i;
                VmBench.progress("ladder: out of time after " + FILL_BUDGET.toSeconds() + " s; " + results.leftOut
                        + " creates left out");
                break;
            }
            ladder.create(order.get(i), Timing.MIX);
        }
        results.provisioned.putAll(ladder.counts());
        results.provisionSeconds = ladder.provisionNanos / 1e9;
    }

    private static void suspendVms(PalisadeApi api, Ladder ladder, Results results) {
        List<ApiTenant> vms = ladder.tenants.get("vm");
        long start = System.nanoTime();
        for (int i = VM_AWAKE; i < vms.size(); i++) {
            api.ok("POST", "/v1/databases/" + vms.get(i).id() + "/suspend", null);
            results.suspended++;
        }
        results.suspendSeconds = (System.nanoTime() - start) / 1e9;
        VmBench.progress("ladder: suspended " + results.suspended + " vm tenants in "
                + Math.round(results.suspendSeconds) + " s");
    }

    /** Memory of everything at scale, then idle CPU over a quiet window. */
    private static void atScale(Path data, long availableBefore, Results results) throws Exception {
        Thread.sleep(SETTLE.toMillis());
        results.atScale = HostMemory.snapshot(data);
        results.diskAtScale.put("schema + database (shared servers)", diskBytes(data.resolve("shared")));
        results.diskAtScale.put("process", diskBytes(data.resolve("instances/process")));
        results.diskAtScale.put("vm", diskBytes(data.resolve("vm")));
        results.memAvailableDropMiB = (availableBefore - DensityBench.memAvailableKiB()) / 1024;
        Map<HostMemory.Kind, Long> cpuBefore = new LinkedHashMap<>();
        for (HostMemory.Kind kind : HostMemory.Kind.values()) {
            cpuBefore.put(kind, results.atScale.part(kind).cpuMillis());
        }
        HostCpu host = HostCpu.read();
        long start = System.nanoTime();
        Thread.sleep(IDLE_WINDOW.toMillis());
        double seconds = (System.nanoTime() - start) / 1e9;
        results.idleHostBusy = HostCpu.read().busyPercentSince(host);
        for (HostMemory.Kind kind : HostMemory.Kind.values()) {
            results.idleCpu.put(kind, Math.max(0, results.atScale.part(kind).cpuMillis() - cpuBefore.get(kind)) / 10.0
                    / seconds);
        }
    }

    /** 3. A random sample, every rung in it (awake and suspended vm tenants alike), answers SELECT 1 via the proxy. */
    private static void sample(Ladder ladder, Results results) {
        Random random = new Random(34);
        List<ApiTenant> picked = new ArrayList<>();
        List<ApiTenant> vms = ladder.tenants.get("vm");
        if (!vms.isEmpty()) {
            picked.add(vms.get(random.nextInt(Math.min(VM_AWAKE, vms.size()))));
            if (vms.size() > VM_AWAKE) {
                picked.add(vms.get(VM_AWAKE + random.nextInt(vms.size() - VM_AWAKE)));
            }
        }
        for (String rung : List.of("schema", "database", "process")) {
            List<ApiTenant> list = new ArrayList<>(ladder.tenants.get(rung));
            Collections.shuffle(list, random);
            picked.addAll(list.subList(0, Math.min(2, list.size())));
        }
        List<ApiTenant> rest = new ArrayList<>(ladder.all());
        rest.removeAll(picked);
        Collections.shuffle(rest, random);
        picked.addAll(rest.subList(0, Math.max(0, Math.min(rest.size(), SAMPLE - picked.size()))));
        Collections.shuffle(picked, random);
        VmBench.progress("ladder: SELECT 1 through the proxy on " + picked.size() + " random tenants");
        for (ApiTenant tenant : picked) {
            int[] counts = results.sample.computeIfAbsent(tenant.rung(), r -> new int[2]);
            counts[0]++;
            long start = System.nanoTime();
            try {
                tenant.selectOne();
                counts[1]++;
                results.sampleMillis.add((System.nanoTime() - start) / 1e6);
            } catch (Exception e) {
                results.sampleFailures.add(tenant + ": " + e.getMessage());
            }
        }
    }

    /**
     * 4. Noisy neighbour: A and B on one shared server (schema rung; database-rung tenants share the same server's
     * CPU, memory, WAL and disk alike), then A and B on the process rung.
     */
    private static void neighbours(PalisadeServer server, PalisadeApi api, Ladder ladder, Path data, Results results)
            throws Exception {
        for (String rung : List.of("schema", "process")) {
            List<ApiTenant> list = ladder.tenants.get(rung);
            if (list.size() < 2) {
                continue;
            }
            ApiTenant victim = list.get(0);
            ApiTenant aggressor;
            long pid;
            String where;
            if (rung.equals("process")) {
                aggressor = list.get(1);
                pid = api.get("/v1/databases/" + aggressor.id() + "/stats").path("pid").asLong();
                where = "the host only: each its own postmaster" + (results.caps.contains("with CPU/memory caps")
                        ? ", in its own cgroup (nano: 1 CPU, 256 MiB)" : ", uncapped");
            } else {
                String name = server.sharedServers().serverOf(victim.id()).orElseThrow();
                aggressor = list.stream().skip(1)
                        .filter(t -> server.sharedServers().serverOf(t.id()).orElse("").equals(name))
                        .findFirst().orElseThrow();
                pid = Long.parseLong(Files.readAllLines(data.resolve("shared").resolve(name)
                        .resolve("data/postmaster.pid")).getFirst().strip());
                long onServer = ladder.all().stream()
                        .filter(t -> server.sharedServers().serverOf(t.id()).orElse("").equals(name)).count();
                where = "shared server " + name + " (" + onServer + " tenants)";
            }
            VmBench.progress("ladder: noisy neighbour on " + rung + ", " + where);
            results.neighbours.add(LadderNeighbours.measure(rung, where, victim, aggressor, pid, NOISY_ROUNDS));
        }
    }

    /** 5. Deletes every tenant, four at a time. */
    private static void delete(PalisadeApi api, Ladder ladder, Results results) throws Exception {
        VmBench.progress("ladder: deleting " + ladder.all().size() + " tenants");
        RUNGS.forEach(rung -> results.deletes.put(rung, new Stats()));
        long start = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Future<double[]>> done = new ArrayList<>();
            for (ApiTenant tenant : ladder.all()) {
                done.add(pool.submit(() -> {
                    long t = System.nanoTime();
                    api.ok("DELETE", "/v1/databases/" + tenant.id(), null);
                    return new double[] {RUNGS.indexOf(tenant.rung()), (System.nanoTime() - t) / 1e6};
                }));
            }
            for (Future<double[]> f : done) {
                double[] d = f.get();
                results.deletes.get(RUNGS.get((int) d[0])).add(d[1]);
            }
        }
        results.deleteSeconds = (System.nanoTime() - start) / 1e9;
    }

    static double mib(long bytes) {
        return bytes / 1048576.0;
    }

    private static long diskBytes(Path dir) {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        Processes.Result du = Processes.run(List.of("du", "-sB1", dir.toString()), Duration.ofMinutes(2), null);
        return du.ok() ? Long.parseLong(du.output().strip().split("\\s+")[0]) : 0;
    }
}
