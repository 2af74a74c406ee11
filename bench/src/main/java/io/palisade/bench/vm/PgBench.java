package io.palisade.bench.vm;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs the host's {@code pgbench} against a tenant. The password goes in the environment ({@code PGPASSWORD}), never
 * on the command line. Stateless.
 */
public final class PgBench {
    private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+) \\(without initial connection time\\)");
    private static final Pattern LATENCY = Pattern.compile("latency average = ([0-9.]+) ms");

    private PgBench() {}

    /** The result of one run: transactions per second and average latency. */
    public record Result(double tps, double latencyAverageMs) {}

    /** {@code pgbench -i -s scale}: creates and fills the pgbench tables. */
    public static void initialise(Tenant tenant, int scale) {
        run(tenant, List.of("-i", "-q", "-s", Integer.toString(scale)), Duration.ofMinutes(3));
    }

    /** {@code pgbench -n -S -c clients -j clients -T seconds}: the built-in select-only script. */
    public static Result selectOnly(Tenant tenant, int clients, int seconds) {
        String output = run(tenant, List.of("-n", "-S", "-c", Integer.toString(clients), "-j",
                Integer.toString(clients), "-T", Integer.toString(seconds)), Duration.ofSeconds(seconds + 60L));
        Matcher tps = TPS.matcher(output);
        Matcher latency = LATENCY.matcher(output);
        if (!tps.find()) {
            throw new IllegalStateException("pgbench printed no tps line:\n" + output);
        }
        return new Result(Double.parseDouble(tps.group(1)), latency.find() ? Double.parseDouble(latency.group(1)) : -1);
    }

    private static String run(Tenant tenant, List<String> arguments, Duration timeout) {
        requireNonNull(tenant, "tenant is null");
        List<String> command = new ArrayList<>(List.of("pgbench", "-h", tenant.instance().endpoint().host(), "-p",
                Integer.toString(tenant.instance().endpoint().port()), "-U", tenant.credentials().username()));
        command.addAll(arguments);
        command.add(tenant.credentials().database());
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().put("PGPASSWORD", tenant.credentials().password());
        builder.environment().put("PGSSLMODE", "disable");
        builder.environment().put("PGCONNECT_TIMEOUT", "30");
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
                throw new IllegalStateException("pgbench " + arguments + " did not finish within " + timeout);
            }
            reader.join(10_000);
            String text = output[0] == null ? "" : new String(output[0], StandardCharsets.UTF_8);
            if (process.exitValue() != 0) {
                throw new IllegalStateException("pgbench " + arguments + " failed (exit " + process.exitValue()
                        + "):\n" + text);
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
