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
import java.util.concurrent.atomic.AtomicInteger;

/**
 * psql as a person at a terminal runs it: on a pseudo-terminal (util-linux {@code script}), fed
 * {@link TestingPsqlSession#TICK} every {@code interval}. Interactive psql does not exit when the server ends its
 * session: it prints the error and resets the connection by itself ("The connection to the server was lost.
 * Attempting reset: Succeeded."), and the next statement runs on the new connection. Each block of messages between two
 * answers is one error in the {@link ClientTimeline}, stamped when its first line came, with the first SQLSTATE in it
 * ({@code VERBOSITY=verbose}). AutoCloseable: close quits psql. Thread-safe.
 */
final class TestingPsqlTerminal implements AutoCloseable {
    private final ClientTimeline timeline;
    private final Process script;
    private final Thread feeder;
    private final Thread reader;
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicInteger resets = new AtomicInteger();
    private final StringBuilder block = new StringBuilder();
    private long blockAt = -1;

    TestingPsqlTerminal(String url, ClientTimeline timeline, Duration interval) {
        requireNonNull(url, "url is null");
        requireNonNull(interval, "interval is null");
        this.timeline = requireNonNull(timeline, "timeline is null");
        // no echo: what is typed while psql resets its connection would otherwise land inside its messages
        String psql = "stty -echo; exec psql '" + url + "' -X -n -qAt -P pager=off -v VERBOSITY=verbose"
                + " -v PROMPT1= -v PROMPT2=";
        ProcessBuilder builder = new ProcessBuilder(List.of("script", "-q", "-f", "-e", "-c", psql, "/dev/null"))
                .redirectErrorStream(true);
        builder.environment().put("TERM", "dumb");
        try {
            script = builder.start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start script (util-linux) with psql: " + e.getMessage(), e);
        }
        reader = Thread.ofPlatform().name("psql-terminal-out").start(this::read);
        feeder = Thread.ofPlatform().name("psql-terminal-in").start(() -> feed(interval));
    }

    /** How many times psql reset its connection by itself. */
    int resets() {
        return resets.get();
    }

    private void feed(Duration interval) {
        try (OutputStream in = script.getOutputStream()) {
            while (!stop.get() && script.isAlive()) {
                in.write(TestingPsqlSession.TICK.getBytes(StandardCharsets.US_ASCII));
                in.flush();
                Thread.sleep(interval.toMillis());
            }
            in.write("\\q\n".getBytes(StandardCharsets.US_ASCII));
            in.flush();
        } catch (IOException e) {
            // psql or script ended: the reader records what it said
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void read() {
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(script.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = lines.readLine()) != null) {
                line = line.replace("\r", "");
                if (TestingPsqlSession.answer(line, timeline)) {
                    endBlock();
                } else if (line.isBlank() || line.startsWith("select 'answer'") || line.equals("\\q")) {
                    continue; // the terminal's echo of what was typed
                } else {
                    if (blockAt < 0) {
                        blockAt = System.currentTimeMillis();
                    }
                    block.append(line).append('\n');
                    if (line.contains("Succeeded.")) {
                        resets.incrementAndGet();
                        endBlock();
                    }
                }
            }
        } catch (IOException e) {
            // script is gone
        }
        endBlock();
    }

    private void endBlock() {
        if (blockAt >= 0) {
            String message = block.toString().strip();
            timeline.failed(blockAt, ClientTimeline.sqlStateIn(message), message);
            block.setLength(0);
            blockAt = -1;
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        feeder.join(Duration.ofSeconds(10));
        if (!script.waitFor(10, TimeUnit.SECONDS)) {
            script.destroyForcibly();
            script.waitFor(10, TimeUnit.SECONDS);
        }
        reader.join(Duration.ofSeconds(10));
    }
}
