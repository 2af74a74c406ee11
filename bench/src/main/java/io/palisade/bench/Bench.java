package io.palisade.bench;

import java.util.List;

/** Entry point of {@code bench/run}: runs the named benchmarks and prints their tables. */
public final class Bench {
    private Bench() {}

    public static void main(String[] args) throws Exception {
        List<String> names = args.length == 0 || args[0].equals("all")
                ? List.of("create", "vm", "noisy", "snapshot", "density", "proxy", "broker", "recovery", "backup",
                        "ladder", "move")
                : List.of(args);
        for (String name : names) {
            switch (name) {
                case "create" -> CreateBench.run();
                case "proxy" -> io.palisade.proxy.ProxyBench.main(new String[] {"6", "10"});
                case "broker" -> {
                    io.palisade.broker.BrokerBench.main(new String[0]);
                    BrokerPathBench.run();
                }
                case "recovery" -> RecoveryBench.run();
                case "vm" -> VmBench.run();
                case "noisy" -> NoisyNeighbourBench.run();
                case "snapshot" -> SnapshotBench.run();
                case "density" -> DensityBench.run();
                case "backup" -> BackupBench.run();
                case "ladder" -> LadderBench.run();
                case "move" -> MoveBench.run();
                default -> {
                    System.err.println("bench: unknown benchmark '" + name + "'; known: create, vm, noisy, snapshot,"
                            + " density, proxy, broker, recovery, backup, ladder, move, all");
                    System.exit(2);
                }
            }
        }
    }
}
