package io.palisade.server;

import static java.util.Objects.requireNonNull;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An open {@code psql} session fed one statement every {@code interval} over its stdin, as a script or a terminal
 * would, each answer recorded in a {@link ClientTimeline} with the answering server's port and the server's clock
 * (psql may buffer its stdout to a pipe). With its input on a pipe psql reports a lost connection and exits; the
 * session then starts psql again at the next tick: that is the client's retry. Errors are read from stderr with
 * {@code VERBOSITY=verbose}, so each carries its SQLSTATE when an ErrorResponse came. AutoCloseable: close ends psql.
 * Thread-safe.
 */
final class TestingPsqlSession implements AutoCloseable {
    static final String TICK = "select 'answer', inet_server_port(),"
            + " (extract(epoch from clock_timestamp()) * 1000)::bigint;\n";

    private final String url;
    private final ClientTimeline timeline;
    private final Duration interval;
    private final AtomicBoolean stop = new AtomicBoolean();
    private final Thread feeder;
    private volatile int starts;

    TestingPsqlSession(String url, ClientTimeline timeline, Duration interval) {
        this.url = requireNonNull(url, "url is null");
        this.timeline = requireNonNull(timeline, "timeline is null");
        this.interval = requireNonNull(interval, "interval is null");
        this.feeder = Thread.ofPlatform().name("psql-session").start(this::feed);
    }

    /** How many psql processes the session started (1 + the retries). */
    int starts() {
        return starts;
    }

    private void feed() {
        while (!stop.get()) {
            Process psql;
            try {
                psql = new ProcessBuilder(List.of("psql", url, "-X", "-qAt", "-v", "VERBOSITY=verbose")).start();
            } catch (IOException e) {
                throw new IllegalStateException("cannot start psql: " + e.getMessage(), e);
            }
            starts++;
            Thread out = Thread.ofPlatform().name("psql-stdout").start(() -> readAnswers(psql));
            StderrReader err = new StderrReader(psql);
            Thread errThread = Thread.ofPlatform().name("psql-stderr").start(err);
            try (OutputStream in = psql.getOutputStream()) {
                while (!stop.get() && psql.isAlive()) {
                    in.write(TICK.getBytes(StandardCharsets.US_ASCII));
                    in.flush();
                    Thread.sleep(interval.toMillis());
                }
            } catch (IOException e) {
                // psql ended between two ticks: its exit is handled below
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                stop.set(true);
            }
            try {
                if (!psql.waitFor(10, TimeUnit.SECONDS)) {
                    psql.destroyForcibly();
                    psql.waitFor(10, TimeUnit.SECONDS);
                }
                out.join(Duration.ofSeconds(10));
                errThread.join(Duration.ofSeconds(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                psql.destroyForcibly();
                return;
            }
            err.report(psql.exitValue(), stop.get());
        }
    }

    private void readAnswers(Process psql) {
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(psql.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                answer(line, timeline);
            }
        } catch (IOException e) {
            // psql is gone
        }
    }

    /** Records {@code line} if it answers {@link #TICK} ({@code answer|port|epoch ms}); says whether it did. */
    static boolean answer(String line, ClientTimeline timeline) {
        String[] fields = line.strip().split("\\|");
        if (fields.length == 3 && fields[0].equals("answer")) {
            timeline.answered(Long.parseLong(fields[2]), Integer.parseInt(fields[1]));
            return true;
        }
        return false;
    }

    /** Collects one psql process's stderr: each message block is one error, stamped when its first line came. */
    private final class StderrReader implements Runnable {
        private final Process psql;
        private final StringBuilder text = new StringBuilder();
        private long firstAt = -1;

        StderrReader(Process psql) {
            this.psql = psql;
        }

        @Override
        public void run() {
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(psql.getErrorStream(),
                    StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    synchronized (this) {
                        if (firstAt < 0) {
                            firstAt = System.currentTimeMillis();
                        }
                        text.append(line).append('\n');
                    }
                }
            } catch (IOException e) {
                // psql is gone
            }
        }

        /** Records what psql said, or that it exited without saying anything (unless the session was closing). */
        synchronized void report(int exitCode, boolean closing) {
            if (firstAt >= 0) {
                String message = text.toString().strip();
                timeline.failed(firstAt, ClientTimeline.sqlStateIn(message), message + " [psql exit " + exitCode + "]");
            } else if (!closing) {
                timeline.failed(System.currentTimeMillis(), null, "psql exited with " + exitCode + " and said nothing");
            }
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        feeder.join(Duration.ofSeconds(30));
    }
}
