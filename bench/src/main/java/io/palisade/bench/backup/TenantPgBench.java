package io.palisade.bench.backup;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Runs the host's {@code pgbench} against a database the API made, at the endpoint its connection fields name (or, as
 * a {@link Target}, through the proxy with the {@code libpq_env} the API returned). The password goes in the child's
 * environment, never on its command line. Stateless.
 */
public final class TenantPgBench {
    private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+) \\(without initial connection time\\)");
    private static final Pattern LATENCY = Pattern.compile("latency average = ([0-9.]+) ms");
    private static final Pattern PROCESSED = Pattern.compile("number of transactions actually processed: ([0-9]+)");
    private static final Pattern PROGRESS = Pattern.compile("(?m)^progress: ([0-9.]+) s, ([0-9.]+) tps");

    private TenantPgBench() {}

    /** The summary of one run. */
    public record Result(double tps, double latencyAverageMs, long transactions) {}

    /**
     * Where pgbench connects: libpq's environment, password included, and a name for messages (never the password).
     */
    public record Target(String name, Map<String, String> environment) {
        public Target {
            requireNonNull(name, "name is null");
            environment = Map.copyOf(environment);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /** One second of a run with {@code -P 1 --progress-timestamp}: its end (epoch seconds) and its TPS. */
    public record Sample(double epochSeconds, double tps) {}

    /**
     * A run that may have been cut short (its sessions ended by a move's cutover: pgbench aborts those clients).
     *
     * @param transactions transactions pgbench saw committed, -1 if it printed no count
     */
    public record Progress(List<Sample> samples, long transactions, boolean aborted) {
        public Progress {
            samples = List.copyOf(samples);
        }
    }

    /** {@code pgbench -i -q -s scale}: creates and fills the pgbench tables. */
    public static void initialise(BenchDatabase db, int scale) {
        initialise(target(db), scale);
    }

    /** {@code pgbench -i -q -s scale} at {@code target}. */
    public static void initialise(Target target, int scale) {
        run(target, List.of("-i", "-q", "-s", Integer.toString(scale)), Duration.ofMinutes(20), null, false);
    }

    /** The built-in TPC-B-like script, {@code clients} clients (one thread each), for {@code seconds}. */
    public static Result tpcb(BenchDatabase db, int clients, int seconds) {
        return summary(run(db, List.of("-c", Integer.toString(clients), "-j", Integer.toString(clients), "-T",
                Integer.toString(seconds)), Duration.ofSeconds(seconds + 120L), null));
    }

    /**
     * The built-in TPC-B-like script without vacuum ({@code -n}) at {@code target}, {@code clients} clients, for
     * {@code seconds}, reporting every second; clients whose session ends are aborted and the run goes on without them.
     */
    public static Progress tpcbProgress(Target target, int clients, int seconds) {
        String output = run(target, List.of("-n", "-c", Integer.toString(clients), "-j", Integer.toString(clients),
                "-T", Integer.toString(seconds), "-P", "1", "--progress-timestamp"), Duration.ofSeconds(seconds + 120L),
                null, true);
        List<Sample> samples = new ArrayList<>();
        Matcher progress = PROGRESS.matcher(output);
        while (progress.find()) {
            samples.add(new Sample(Double.parseDouble(progress.group(1)), Double.parseDouble(progress.group(2))));
        }
        Matcher processed = PROCESSED.matcher(output);
        return new Progress(samples, processed.find() ? Long.parseLong(processed.group(1)) : -1,
                output.contains("aborted"));
    }

    /** The built-in TPC-B-like script, {@code transactions} per client (a fixed amount of new WAL). */
    public static Result tpcbTransactions(BenchDatabase db, int clients, int transactions) {
        return summary(run(db, List.of("-n", "-c", Integer.toString(clients), "-j", Integer.toString(clients), "-t",
                Integer.toString(transactions)), Duration.ofMinutes(20), null));
    }

    /**
     * The built-in select-only script at a fixed total rate ({@code -R}) for {@code seconds}, with a per-transaction
     * log; returns every transaction's latency in milliseconds, measured by pgbench from its scheduled start (so a
     * stall counts against the transactions queued behind it, too).
     */
    public static double[] selectOnlyAtRate(BenchDatabase db, int clients, int rate, int seconds, Path logDir) {
        try {
            Files.createDirectories(logDir);
            try (Stream<Path> old = Files.list(logDir)) {
                for (Path file : old.toList()) {
                    Files.delete(file);
                }
            }
            run(db, List.of("-n", "-S", "-c", Integer.toString(clients), "-j", Integer.toString(clients), "-R",
                    Integer.toString(rate), "-T", Integer.toString(seconds), "-l", "--log-prefix",
                    logDir.resolve("tx").toString()), Duration.ofSeconds(seconds + 120L), logDir);
            List<Double> latencies = new ArrayList<>();
            try (Stream<Path> logs = Files.list(logDir)) {
                for (Path log : logs.toList()) {
                    for (String line : Files.readAllLines(log)) {
                        // client_id transaction_no time script_no time_epoch time_us [schedule_lag]; time in µs
                        String[] fields = line.trim().split("\\s+");
                        if (fields.length >= 6 && !fields[2].equals("skipped") && !fields[2].equals("failed")) {
                            latencies.add(Long.parseLong(fields[2]) / 1000.0);
                        }
                    }
                }
            }
            if (latencies.isEmpty()) {
                throw new IllegalStateException("pgbench wrote no transaction log under " + logDir);
            }
            return latencies.stream().mapToDouble(Double::doubleValue).toArray();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read pgbench's transaction log in " + logDir + ": "
                    + e.getMessage(), e);
        }
    }

    private static Result summary(String output) {
        Matcher tps = TPS.matcher(output);
        Matcher latency = LATENCY.matcher(output);
        Matcher processed = PROCESSED.matcher(output);
        if (!tps.find()) {
            throw new IllegalStateException("pgbench printed no tps line:\n" + output);
        }
        return new Result(Double.parseDouble(tps.group(1)), latency.find() ? Double.parseDouble(latency.group(1)) : -1,
                processed.find() ? Long.parseLong(processed.group(1)) : -1);
    }

    private static Target target(BenchDatabase db) {
        requireNonNull(db, "db is null");
        return new Target(db.toString(), db.libpqEnvironment());
    }

    private static String run(BenchDatabase db, List<String> arguments, Duration timeout, Path workDir) {
        return run(target(db), arguments, timeout, workDir, false);
    }

    /** Runs pgbench; exit 2 (some clients aborted) is accepted when {@code mayAbort}. */
    private static String run(Target target, List<String> arguments, Duration timeout, Path workDir, boolean mayAbort) {
        List<String> command = new ArrayList<>(List.of("pgbench"));
        command.addAll(arguments);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        if (workDir != null) {
            builder.directory(workDir.toFile());
        }
        builder.environment().putAll(target.environment());
        try {
            Process process = builder.start();
            process.getOutputStream().close();
            byte[][] output = new byte[1][];
            Thread reader = Thread.ofPlatform().name("pgbench-output").start(() -> {
                try {
                    output[0] = process.getInputStream().readAllBytes();
                } catch (IOException e) {
                    output[0] = new byte[0];
                }
            });
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
                throw new IllegalStateException("pgbench " + arguments + " against " + target
                        + " did not finish within " + timeout);
            }
            reader.join(10_000);
            String text = output[0] == null ? "" : new String(output[0], StandardCharsets.UTF_8);
            if (process.exitValue() != 0 && !(mayAbort && process.exitValue() == 2)) {
                throw new IllegalStateException("pgbench " + arguments + " against " + target + " failed (exit "
                        + process.exitValue() + "):\n" + text);
            }
            return text;
        } catch (IOException e) {
            throw new IllegalStateException("cannot run pgbench: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while pgbench ran", e);
        }
    }
}
