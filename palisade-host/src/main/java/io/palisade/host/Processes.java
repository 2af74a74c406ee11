package io.palisade.host;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Small helpers for child processes and the process table. Every child process palisade starts is built by
 * {@link #builder}: it never inherits the JVM's environment (which may hold {@code PALISADE_BOOTSTRAP_API_KEY} and
 * other secrets), only {@link #INHERITED_ENVIRONMENT} and a C locale. Thread-safe (stateless).
 */
public final class Processes {
    /** The only variables a child process takes over from palisade's own environment. */
    public static final Set<String> INHERITED_ENVIRONMENT = Set.of("PATH", "HOME", "TZ", "TMPDIR");

    private static final String DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    private Processes() {}

    /**
     * A process builder for {@code command} with a cleared environment: {@link #INHERITED_ENVIRONMENT} where set (a
     * default {@code PATH} where not), and {@code LANG=C}, {@code LC_ALL=C}. Callers may add what the child needs.
     */
    public static ProcessBuilder builder(List<String> command) {
        ProcessBuilder builder = new ProcessBuilder(command);
        Map<String, String> environment = builder.environment();
        environment.clear();
        Map<String, String> own = System.getenv();
        for (String key : INHERITED_ENVIRONMENT) {
            String value = own.get(key);
            if (value != null) {
                environment.put(key, value);
            }
        }
        environment.putIfAbsent("PATH", DEFAULT_PATH);
        environment.put("LANG", "C");
        environment.put("LC_ALL", "C");
        return builder;
    }

    /** The result of a finished command; {@code output} is stdout and stderr merged. */
    public record Result(int exitCode, String output) {
        public boolean ok() {
            return exitCode == 0;
        }
    }

    /** Runs a command to completion with a bound; stdin gets {@code input} if not null. Never prints secrets itself. */
    public static Result run(List<String> command, Duration timeout, String input) {
        return run(command, timeout, input, null);
    }

    /**
     * As {@link #run(List, Duration, String)}, with the file {@code inputFile} (opened here, by palisade) as standard
     * input instead of {@code input} if not null.
     */
    public static Result run(List<String> command, Duration timeout, String input, Path inputFile) {
        ProcessBuilder builder = builder(command).redirectErrorStream(true);
        if (inputFile != null) {
            builder.redirectInput(inputFile.toFile());
        }
        try {
            Process process = builder.start();
            if (inputFile == null && input != null) {
                try (var stdin = process.getOutputStream()) {
                    stdin.write(input.getBytes(StandardCharsets.UTF_8));
                }
            } else if (inputFile == null) {
                process.getOutputStream().close();
            }
            var output = new StringBuilder();
            Thread reader = Thread.ofVirtual().name("proc-reader").start(() -> {
                try {
                    output.append(new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
                } catch (IOException ignored) {
                    // the process went away; what we have is what we report
                }
            });
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                throw new PalisadeException(
                        ErrorCode.INTERNAL,
                        "'" + command.getFirst() + "' did not finish within " + timeout.toSeconds() + " s");
            }
            reader.join(Duration.ofSeconds(5));
            synchronized (output) {
                return new Result(process.exitValue(), output.toString());
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot run '" + command.getFirst() + "': " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while running '" + command.getFirst() + "'", e);
        }
    }

    /** Runs a command and fails with its output tail if it exits non-zero. */
    public static String check(List<String> command, Duration timeout) {
        Result result = run(command, timeout, null);
        if (!result.ok()) {
            throw new PalisadeException(
                    ErrorCode.INTERNAL,
                    "'" + String.join(" ", command.subList(0, Math.min(3, command.size()))) + "' exited with "
                            + result.exitCode() + ": " + tail(result.output(), 5));
        }
        return result.output();
    }

    /** Sends a signal by number to a pid; returns false if the process does not exist. */
    public static boolean signal(long pid, String signal) {
        if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
            return run(List.of("kill", "-" + signal, Long.toString(pid)), Duration.ofSeconds(5), null).ok();
        }
        return false;
    }

    /**
     * Sends a signal to that very process: false, and nothing sent, once it has ended (a {@link ProcessHandle} is
     * bound to its start time, so a pid reused by another process is never signalled).
     */
    public static boolean signal(ProcessHandle process, String signal) {
        if (!process.isAlive()) {
            return false;
        }
        return run(List.of("kill", "-" + signal, Long.toString(process.pid())), Duration.ofSeconds(5), null).ok();
    }

    /** Waits until that very process has ended (or is a zombie); true if it did within the bound. */
    public static boolean awaitExit(ProcessHandle process, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive() || isZombie(process.pid())) {
                return true;
            }
            sleep(Duration.ofMillis(20));
        }
        return false;
    }

    /** Waits until the pid is gone; true if it went within the bound. */
    public static boolean awaitExit(long pid, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            Optional<ProcessHandle> handle = ProcessHandle.of(pid);
            if (handle.isEmpty() || !handle.get().isAlive() || isZombie(pid)) {
                return true;
            }
            sleep(Duration.ofMillis(20));
        }
        return false;
    }

    /** True if the process is a zombie or gone. */
    public static boolean isZombie(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            int close = stat.lastIndexOf(')');
            return close > 0 && stat.length() > close + 2 && stat.charAt(close + 2) == 'Z';
        } catch (IOException e) {
            return true;
        }
    }

    /** Resident set size of a process in bytes, or -1 if it is gone. */
    public static long rssBytes(long pid) {
        return statusBytes(pid, "VmRSS:");
    }

    /**
     * The private (anonymous) memory a process holds, without the shared memory it has touched: for a PostgreSQL
     * backend, what its sorts and hashes allocated, not the server's shared buffers. -1 if the process is gone.
     */
    public static long anonymousBytes(long pid) {
        return statusBytes(pid, "RssAnon:");
    }

    private static long statusBytes(long pid, String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                if (line.startsWith(field)) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // gone
        }
        return -1;
    }

    public static void sleep(Duration duration) {
        try {
            Thread.sleep(duration);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted", e);
        }
    }

    /** The last {@code lines} lines of a text, joined by " | " for one-line error messages. */
    public static String tail(String text, int lines) {
        Deque<String> last = new ArrayDeque<>();
        for (String line : text.split("\n")) {
            if (!line.isBlank()) {
                last.addLast(line.strip());
                if (last.size() > lines) {
                    last.removeFirst();
                }
            }
        }
        return String.join(" | ", last);
    }

    /**
     * The last lines of a file, or an empty list if it does not exist or is not a plain file (a link is never followed:
     * see {@link SafeFiles}). For error messages; {@link SafeFiles#tailLines} reports a refused file instead.
     */
    public static List<String> tailFile(Path file, int lines) {
        try {
            return SafeFiles.tailLines(file, lines, 256L * 1024);
        } catch (PalisadeException e) {
            return List.of();
        }
    }
}
