package io.palisade.bench;

import static java.util.Objects.requireNonNull;

import io.palisade.bench.ladder.ApiTenant;
import io.palisade.bench.vm.Aggressor;
import io.palisade.bench.vm.FixedRateLoad;
import io.palisade.bench.vm.HostCpu;
import io.palisade.bench.vm.ProcCpu;
import java.time.Duration;

/**
 * The ladder's noisy neighbour: tenant B runs {@code SELECT 1} at a fixed rate through the proxy, alone and while
 * tenant A of the same rung — on the same shared server for {@code schema} and {@code database} — runs {@link Aggressor}'s CPU
 * and IO load (through the proxy as well, without {@code CHECKPOINT}, which a tenant of a shared server may not run).
 * Alone and loaded windows alternate over several rounds, as in {@link NoisyNeighbourBench}, whose rate, window and
 * aggressor sizes it uses. Stateless.
 */
final class LadderNeighbours {
    private LadderNeighbours() {}

    /**
     * One rung's pooled windows.
     *
     * @param where what A and B share (a shared server, or nothing but the host)
     * @param serverCpuAlone CPU of A's server (its whole process tree) in % of one core, mean over the alone windows
     * @param serverCpuLoaded the same over the loaded windows
     */
    record Result(String rung, String where, Stats alone, Stats loaded, double hostBusyAlone, double hostBusyLoaded,
            double serverCpuAlone, double serverCpuLoaded, long ioRounds, long errors) {
        Result {
            requireNonNull(rung, "rung is null");
            requireNonNull(where, "where is null");
            requireNonNull(alone, "alone is null");
            requireNonNull(loaded, "loaded is null");
        }

        double p99Ratio() {
            return loaded.percentile(99) / alone.percentile(99);
        }
    }

    /**
     * Measures {@code rounds} × (alone window, loaded window) of B. {@code serverPid} is the postmaster A's sessions
     * run under (a shared server's, or A's own on the {@code process} rung).
     */
    static Result measure(String rung, String where, ApiTenant victim, ApiTenant aggressor, long serverPid, int rounds)
            throws Exception {
        Aggressor.prepare(aggressor);
        FixedRateLoad.selectOne(victim, NoisyNeighbourBench.RATE, Duration.ofSeconds(2)); // warm the path
        Stats alone = new Stats();
        Stats loaded = new Stats();
        double[] busy = new double[2];
        double[] serverCpu = new double[2];
        long ioRounds = 0;
        long errors = 0;
        for (int round = 1; round <= rounds; round++) {
            double[] a = window(victim, alone, serverPid);
            busy[0] += a[0];
            serverCpu[0] += a[1];
            Aggressor load = Aggressor.start(aggressor, NoisyNeighbourBench.CPU_SESSIONS, true, false);
            double[] l;
            try {
                Thread.sleep(NoisyNeighbourBench.AGGRESSOR_WARM_UP.toMillis());
                l = window(victim, loaded, serverPid);
            } finally {
                load.close();
            }
            busy[1] += l[0];
            serverCpu[1] += l[1];
            ioRounds += load.ioRounds();
            errors += load.errors();
            VmBench.progress(String.format("noisy/%s round %d: B's p99 alone %.1f ms, with A loaded %.1f ms; A's server"
                    + " %.0f %% → %.0f %% of a core", rung, round, alone.percentile(99), loaded.percentile(99), a[1],
                    l[1]));
        }
        return new Result(rung, where, alone, loaded, busy[0] / rounds, busy[1] / rounds, serverCpu[0] / rounds,
                serverCpu[1] / rounds, ioRounds, errors);
    }

    /** One window of B into {@code into}; returns host CPU busy and A's server CPU, both in % of one core. */
    private static double[] window(ApiTenant victim, Stats into, long serverPid) throws Exception {
        HostCpu before = HostCpu.read();
        long serverBefore = ProcCpu.treeMillis(serverPid);
        long start = System.nanoTime();
        for (double latency : FixedRateLoad.selectOne(victim, NoisyNeighbourBench.RATE, NoisyNeighbourBench.WINDOW)) {
            into.add(latency);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        // a backend that exits meanwhile takes its CPU time out of the tree: clamp at 0
        double server = Math.max(0, ProcCpu.treeMillis(serverPid) - serverBefore) / 10.0 / seconds;
        return new double[] {HostCpu.read().busyPercentSince(before), server};
    }
}
