package io.palisade.bench;

import java.util.List;

/** Entry point of {@code bench/run}: runs the named benchmarks and prints their tables. */
public final class Bench {
    private Bench() {}

    public static void main(String[] args) throws Exception {
        List<String> names = args.length == 0 || args[0].equals("all") ? List.of("create") : List.of(args);
        for (String name : names) {
            switch (name) {
                case "create" -> CreateBench.run();
                default -> {
                    System.err.println("bench: unknown benchmark '" + name + "'; known: create, all");
                    System.exit(2);
                }
            }
        }
    }
}
