package io.palisade.proxy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs a real client program (psql, node, pgbench) with a bounded wait; output goes to temp files. */
final class ExternalClient {
    record Result(int exitCode, String stdout, String stderr, Duration elapsed) {
        String all() {
            return stdout + stderr;
        }
    }

    private ExternalClient() {}

    static Process start(List<String> command, Map<String, String> env, Path directory, Path stdout, Path stderr) {
        ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(stdout.toFile())
                .redirectError(stderr.toFile());
        if (directory != null) {
            builder.directory(directory.toFile());
        }
        builder.environment().putAll(env);
        try {
            return builder.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + command.getFirst(), e);
        }
    }

    static Result run(List<String> command, Map<String, String> env, Path directory, Duration timeout) {
        try {
            Path out = Files.createTempFile("client-", ".out");
            Path err = Files.createTempFile("client-", ".err");
            try {
                long start = System.nanoTime();
                Process process = start(command, env, directory, out, err);
                boolean exited = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
                if (!exited) {
                    process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
                Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
                String stdout = Files.readString(out, StandardCharsets.UTF_8);
                String stderr = Files.readString(err, StandardCharsets.UTF_8);
                if (!exited) {
                    throw new AssertionError(command.getFirst() + " did not finish within " + timeout + "; stdout: "
                            + stdout + " stderr: " + stderr);
                }
                return new Result(process.exitValue(), stdout, stderr, elapsed);
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }
}
