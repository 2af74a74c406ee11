package io.palisade.bench;

import io.palisade.bench.ladder.HostMemory;
import io.palisade.bench.vm.ProcMemory;
import java.util.List;
import java.util.Map;

/** Prints {@link LadderBench}'s tables and issue 12's goals, met or not. Stateless. */
final class LadderReport {
    private static final double GOAL_SCHEMA_MS = 20;
    private static final double GOAL_DATABASE_MS = 100;
    private static final double GOAL_GIB = 8;

    private LadderReport() {}

    static void print(LadderBench.Results r, String loadBefore, String loadAfter, long seconds) {
        System.out.println();
        System.out.println("## ladder (issue 12): the four rungs side by side, " + r.total() + " tenants on one host");
        System.out.println("machine: " + Machine.describe());
        System.out.println("vm accelerator: " + r.accelerator + "; host load average (1/5/15 min) before: " + loadBefore
                + ", after: " + loadAfter + "; whole run " + seconds + " s");
        System.out.println("one in-process palisade, proxy on (every query: PgJDBC → TLS → proxy → server), backups"
                + " off, nano plan; caps: " + r.caps);
        StringBuilder phases = new StringBuilder();
        r.phaseSeconds.forEach((name, s) -> phases.append(phases.isEmpty() ? "" : "; ").append(name).append(' ')
                .append(s).append(" s"));
        System.out.println("phases: " + phases);
        if (r.leftOut > 0) {
            System.out.println("**scaled down by time**: provisioning stopped after "
                    + LadderBench.FILL_BUDGET.toSeconds() + " s from the start with " + r.leftOut + " creates of the"
                    + " mix left out (`-Dbench.ladder.fill-budget-seconds` to give it longer)");
        } else if (r.total() != 1000 || r.provisioned.get("process") < 80 || r.provisioned.get("vm") < 20) {
            System.out.println("**scaled down**: " + r.provisioned + " instead of 900 schema/database + 80 process + 20"
                    + " vm (set by -Dbench.quick or -Dbench.ladder.*)");
        }

        System.out.println();
        System.out.println("### create → first query through the proxy, on a nearly empty host");
        System.out.println();
        System.out.println("The first creates of each rung (schema, then database, then process, then vm), each"
                + " followed by `SELECT 1` over a new connection with the `jdbc_url` the 201 returned. The process"
                + " and vm rows come after one create that built the rung's template (not counted).");
        System.out.println();
        latencyTable(r.emptyAnswer, r.emptyQuery);

        System.out.println();
        System.out.println("### the same over the whole provisioning (every create of the run, up to " + r.total()
                + " tenants on the host)");
        System.out.println();
        latencyTable(r.allAnswer, r.allQuery);

        idle(r);
        scale(r);
        sample(r);
        neighbours(r);
        deletes(r);
        goals(r);
    }

    private static void latencyTable(Map<String, Stats> answer, Map<String, Stats> query) {
        System.out.println("| rung | creates | POST → 201 p50 ms | p95 ms | POST → first `SELECT 1` p50 ms | p95 ms |"
                + " max ms |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|");
        for (String rung : LadderBench.RUNGS) {
            Stats a = answer.get(rung);
            Stats q = query.get(rung);
            if (a.count() == 0) {
                System.out.printf("| %s | 0 | | | | | |%n", rung);
                continue;
            }
            System.out.printf("| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f |%n", rung, a.count(), a.percentile(50),
                    a.percentile(95), q.percentile(50), q.percentile(95), q.max());
        }
    }

    private static void idle(LadderBench.Results r) {
        System.out.println();
        System.out.println("### host memory and disk per idle tenant (created, queried once, disconnected)");
        System.out.println();
        System.out.println("| rung | how | RSS MiB | PSS MiB | disk MiB |");
        System.out.println("|---|---|---:|---:|---:|");
        for (String rung : LadderBench.RUNGS) {
            LadderBench.IdleCost cost = r.idle.get(rung);
            if (cost == null) {
                continue;
            }
            System.out.printf("| %s%s | %s | %.2f | %.2f | %.2f |%n", rung, rung.equals("vm") ? " (running)" : "",
                    cost.how(), cost.rssMiB(), cost.pssMiB(), cost.diskMiB());
        }
        if (r.idle.containsKey("vm")) {
            System.out.println("| vm (suspended) | no process; its RAM is a file on disk (see the disk at scale below)"
                    + " | 0 | 0 | |");
        }
        System.out.println();
        System.out.printf("A shared server with no tenants: RSS %.0f MiB, PSS %.0f MiB (postmaster and auxiliary"
                + " processes; its shared_buffers fill as tenants touch pages). RSS counts shared memory once per"
                + " process that touched it, PSS shares it out; disk is allocated bytes (`du`) after the first"
                + " creates, for vm incl. the snapshot template.%n", r.sharedEmptyRssMiB, r.sharedEmptyPssMiB);
    }

    private static void scale(LadderBench.Results r) {
        System.out.println();
        System.out.println("### " + r.total() + " tenants on one host");
        System.out.println();
        System.out.println("| measure | value |");
        System.out.println("|---|---:|");
        System.out.printf("| tenants: schema / database / process / vm | %d / %d / %d / %d |%n",
                r.provisioned.get("schema"), r.provisioned.get("database"), r.provisioned.get("process"),
                r.provisioned.get("vm"));
        System.out.printf("| time to provision them (one client, sequential; each create with its first query) |"
                + " %.0f s (%.1f tenants/s) |%n", r.provisionSeconds, r.total() / r.provisionSeconds);
        int failed = r.createFailures.values().stream().mapToInt(List::size).sum();
        System.out.printf("| creates that failed (the run went on without them) | %s |%n", failed == 0 ? "none"
                : failed + " " + r.createFailures.keySet());
        System.out.printf("| vm tenants then suspended | %d (in %.0f s); %d left running |%n", r.suspended,
                r.suspendSeconds, r.provisioned.get("vm") - r.suspended);
        System.out.printf("| shared servers started by placement | %d |%n", r.sharedServers);
        for (var disk : r.diskAtScale.entrySet()) {
            int tenants = disk.getKey().startsWith("schema")
                    ? r.provisioned.get("schema") + r.provisioned.get("database") : r.provisioned.get(disk.getKey());
            System.out.printf("| disk of %s tenants (allocated) | %.0f MiB (%.1f MiB a tenant) |%n", disk.getKey(),
                    LadderBench.mib(disk.getValue()), LadderBench.mib(disk.getValue()) / Math.max(1, tenants));
        }
        System.out.printf("| host MemAvailable drop over the run (whole host: other work on it counts too) | %d MiB"
                + " |%n", r.memAvailableDropMiB);
        System.out.println();
        System.out.println("| process tree (after provisioning and suspending) | roots | processes | RSS MiB |"
                + " PSS MiB | idle CPU, % of one core |");
        System.out.println("|---|---:|---:|---:|---:|---:|");
        for (HostMemory.Kind kind : HostMemory.Kind.values()) {
            HostMemory.Part part = r.atScale.part(kind);
            if (part.roots().isEmpty()) {
                continue;
            }
            ProcMemory.Usage u = part.usage();
            System.out.printf("| %s | %d | %d | %.0f | %.0f | %.1f |%n", kind.label(), part.roots().size(),
                    u.processes(), LadderBench.mib(u.rssBytes()), LadderBench.mib(u.pssBytes()),
                    r.idleCpu.get(kind));
        }
        ProcMemory.Usage total = r.atScale.total();
        System.out.printf("| **total: palisade + all servers + QEMUs** | | %d | **%.0f** | **%.0f** | %.1f |%n",
                total.processes(), LadderBench.mib(total.rssBytes()), LadderBench.mib(total.pssBytes()),
                r.idleCpu.values().stream().mapToDouble(Double::doubleValue).sum());
        System.out.printf("%nIdle CPU over %d s with nobody connected; the whole host was %.0f %% of one core busy.%n",
                LadderBench.IDLE_WINDOW.toSeconds(), r.idleHostBusy);
    }

    private static void sample(LadderBench.Results r) {
        System.out.println();
        int sampled = r.sample.values().stream().mapToInt(c -> c[0]).sum();
        int answered = r.sample.values().stream().mapToInt(c -> c[1]).sum();
        System.out.println("### reachability: `SELECT 1` through the proxy on " + sampled + " random tenants");
        System.out.println();
        System.out.println("| rung | sampled | answered |");
        System.out.println("|---|---:|---:|");
        for (String rung : LadderBench.RUNGS) {
            int[] c = r.sample.getOrDefault(rung, new int[2]);
            System.out.printf("| %s | %d | %d |%n", rung, c[0], c[1]);
        }
        if (r.sampleMillis.count() > 0) {
            System.out.printf("%nconnect + `SELECT 1`: p50 %.0f ms, max %.0f ms (the max is a suspended vm tenant"
                    + " waking on connect when one was sampled).%n", r.sampleMillis.percentile(50),
                    r.sampleMillis.max());
        }
        r.sampleFailures.forEach(f -> System.out.println("- failed: " + f));
    }

    private static void neighbours(LadderBench.Results r) {
        if (r.neighbours.isEmpty()) {
            return;
        }
        System.out.println();
        System.out.println("### noisy neighbour: B's `SELECT 1` (" + NoisyNeighbourBench.RATE + "/s, one connection"
                + " through the proxy) alone vs while A runs " + NoisyNeighbourBench.CPU_SESSIONS + " CPU sessions +"
                + " 1 IO session (no CHECKPOINT)");
        System.out.println();
        System.out.println(LadderBench.NOISY_ROUNDS + " rounds × " + NoisyNeighbourBench.WINDOW.toSeconds()
                + " s windows per condition, interleaved, latency from each query's scheduled start.");
        System.out.println();
        System.out.println("| rung | A and B share | B p50 alone ms | B p99 alone ms | B p50 loaded ms |"
                + " B p99 loaded ms | **p99 loaded ÷ alone** | host CPU busy alone → loaded, % of 1 core | A's server CPU alone →"
                + " loaded | A's IO rounds (~6 MB each) |");
        System.out.println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (LadderNeighbours.Result n : r.neighbours) {
            System.out.printf("| %s | %s | %.2f | %.2f | %.2f | %.2f | **%.1f×** | %.0f → %.0f | %.0f → %.0f %% | %d%s"
                    + " |%n", n.rung(), n.where(), n.alone().percentile(50), n.alone().percentile(99),
                    n.loaded().percentile(50), n.loaded().percentile(99), n.p99Ratio(), n.hostBusyAlone(),
                    n.hostBusyLoaded(), n.serverCpuAlone(), n.serverCpuLoaded(), n.ioRounds(),
                    n.errors() > 0 ? " (" + n.errors() + " session errors)" : "");
        }
    }

    private static void deletes(LadderBench.Results r) {
        System.out.println();
        System.out.printf("### delete: every tenant, four at a time, in %.0f s%n", r.deleteSeconds);
        System.out.println();
        System.out.println("| rung | deletes | p50 ms | p95 ms | max ms |");
        System.out.println("|---|---:|---:|---:|---:|");
        for (String rung : LadderBench.RUNGS) {
            Stats s = r.deletes.get(rung);
            if (s != null && s.count() > 0) {
                System.out.printf("| %s | %d | %.0f | %.0f | %.0f |%n", rung, s.count(), s.percentile(50),
                        s.percentile(95), s.max());
            }
        }
    }

    private static void goals(LadderBench.Results r) {
        System.out.println();
        System.out.println("| goal (issue 12) | measured | met |");
        System.out.println("|---|---|---|");
        goal("`schema` create p50 ≤ 20 ms", r.emptyAnswer.get("schema"), r.emptyQuery.get("schema"), GOAL_SCHEMA_MS);
        goal("`database` create p50 ≤ 100 ms", r.emptyAnswer.get("database"), r.emptyQuery.get("database"),
                GOAL_DATABASE_MS);
        ProcMemory.Usage total = r.atScale.total();
        double pssGiB = total.pssBytes() / 1073741824.0;
        double rssGiB = total.rssBytes() / 1073741824.0;
        System.out.printf("| %d tenants, palisade + servers < %.0f GiB | PSS %.2f GiB (RSS summed per process: %.2f"
                + " GiB) | %s |%n", r.total(), GOAL_GIB, pssGiB, rssGiB,
                rssGiB < GOAL_GIB ? "yes" : pssGiB < GOAL_GIB ? "yes by PSS; the naive RSS sum is over" : "**no**");
        int sampled = r.sample.values().stream().mapToInt(c -> c[0]).sum();
        int answered = r.sample.values().stream().mapToInt(c -> c[1]).sum();
        int failed = r.createFailures.values().stream().mapToInt(List::size).sum();
        System.out.printf("| every tenant reachable | all %d created answered their first query at create%s; %d of %d"
                + " sampled at the end | %s |%n", r.total(), failed == 0 ? "" : " (" + failed + " creates failed)",
                answered, sampled, answered == sampled && failed == 0 ? "yes" : "**no**");
        r.createFailures.forEach((rung, messages) -> messages.forEach(m -> System.out.println("- failed " + rung
                + " create: " + m)));
    }

    private static void goal(String name, Stats answer, Stats query, double limit) {
        if (answer.count() == 0) {
            return;
        }
        System.out.printf("| %s | POST → 201 p50 %.0f ms (→ first query through the proxy %.0f ms) | %s |%n", name,
                answer.percentile(50), query.percentile(50), answer.percentile(50) <= limit ? "yes" : "**no**");
    }
}
