package io.palisade.server;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.testing.TestingDirectories;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * An application's Neon {@code Pool} session ({@code clients/node/move-cutover-neon.mjs}: the unmodified
 * {@code @neondatabase/serverless} driver over palisade's {@code /v2} WebSocket, one {@code pool.query} per interval),
 * each event recorded in a {@link ClientTimeline}. A pooled connection that ends while idle counts as an error the
 * pool handled. AutoCloseable: close ends the script (its stdin closes) and waits for it. Thread-safe.
 */
final class TestingNeonPoolSession implements AutoCloseable {
    private static final Path NODE_DIR = TestingDirectories.repoDir().resolve("clients/node");
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final Process node;
    private final Thread reader;
    private final Thread errors;
    private final StringBuilder stderr = new StringBuilder();

    TestingNeonPoolSession(int brokerPort, String serverlessUrl, ClientTimeline timeline, Duration interval) {
        requireNonNull(serverlessUrl, "serverlessUrl is null");
        requireNonNull(timeline, "timeline is null");
        if (!Files.isDirectory(NODE_DIR.resolve("node_modules/@neondatabase/serverless"))) {
            throw new AssertionError("Node.js clients are not installed: run bin/setup (npm ci in clients/node)");
        }
        ProcessBuilder builder = new ProcessBuilder(List.of("node", "move-cutover-neon.mjs"))
                .directory(NODE_DIR.toFile());
        builder.environment().put("BROKER_PORT", Integer.toString(brokerPort));
        builder.environment().put("DATABASE_URL", serverlessUrl);
        builder.environment().put("INTERVAL_MS", Long.toString(interval.toMillis()));
        try {
            node = builder.start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start node: " + e.getMessage(), e);
        }
        reader = Thread.ofPlatform().name("neon-pool-stdout").start(() -> read(timeline));
        errors = Thread.ofPlatform().name("neon-pool-stderr").start(() -> {
            try {
                String text = new String(node.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
                synchronized (stderr) {
                    stderr.append(text);
                }
            } catch (IOException ignored) {
                // node is gone
            }
        });
    }

    private void read(ClientTimeline timeline) {
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(node.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = lines.readLine()) != null) {
                JsonNode event = MAPPER.readTree(line);
                long at = event.path("t").asLong();
                if (event.path("ok").asBoolean(false)) {
                    timeline.answered(at, event.path("port").asInt());
                } else {
                    String code = event.path("code").isTextual() ? event.path("code").asText() : null;
                    String what = event.path("idle_error").asBoolean(false) ? "idle connection ended: " : "";
                    timeline.failed(at, code, what + event.path("message").asText());
                }
            }
        } catch (IOException e) {
            // node is gone
        }
    }

    /** Whether the script still runs (it only stops when told, or when the driver crashed it). */
    boolean isAlive() {
        return node.isAlive();
    }

    /** What the script wrote to stderr so far (a crash's stack trace). */
    String stderr() {
        synchronized (stderr) {
            return stderr.toString();
        }
    }

    @Override
    public void close() throws InterruptedException {
        try {
            node.getOutputStream().close();
        } catch (IOException ignored) {
            // already gone
        }
        if (!node.waitFor(15, TimeUnit.SECONDS)) {
            node.destroyForcibly();
            node.waitFor(10, TimeUnit.SECONDS);
        }
        reader.join(Duration.ofSeconds(10));
        errors.join(Duration.ofSeconds(10));
    }
}
