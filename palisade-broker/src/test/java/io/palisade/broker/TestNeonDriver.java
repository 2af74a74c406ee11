package io.palisade.broker;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.testing.TestingPostgres;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Runs {@code clients/node/broker-neon.test.mjs}: the unmodified {@code @neondatabase/serverless} driver (HTTP
 * {@code neon()} and WebSocket {@code Pool}) against a real broker in front of a real PostgreSQL.
 */
class TestNeonDriver {
    @Test
    void unmodifiedNeonDriverPassesItsSuite() throws Exception {
        Path clients = repoDir().resolve("clients/node");
        boolean haveNode = Files.isDirectory(clients.resolve("node_modules/@neondatabase/serverless"))
                && commandExists("node");
        if (!haveNode) {
            String reason = "node or clients/node/node_modules missing (run npm ci in clients/node)";
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError(reason);
            }
            System.out.println("SKIPPED TestNeonDriver: " + reason);
            Assumptions.abort(reason);
        }
        try (TestingPostgres postgres = new TestingPostgres();
                TestingBroker broker = new TestingBroker(postgres, BrokerConfig.defaults())) {
            ProcessBuilder builder = new ProcessBuilder("node", "--test", "--test-reporter=spec",
                    "--test-concurrency=1", "--test-timeout=30000", "broker-neon.test.mjs")
                    .directory(clients.toFile())
                    .redirectErrorStream(true);
            builder.environment().put("BROKER_PORT", Integer.toString(broker.port()));
            builder.environment().put("DATABASE_URL", broker.connectionString());
            Process process = builder.start();
            StringBuilder collected = new StringBuilder();
            Thread pump = Thread.ofPlatform().name("node-output").daemon().start(() -> {
                try (var reader = process.inputReader(StandardCharsets.UTF_8)) {
                    reader.lines().forEach(line -> {
                        System.out.println("[node] " + line);
                        synchronized (collected) {
                            collected.append(line).append('\n');
                        }
                    });
                } catch (IOException e) {
                    // process gone
                }
            });
            boolean finished;
            try {
                finished = process.waitFor(180, TimeUnit.SECONDS);
            } finally {
                process.destroyForcibly();
                pump.join(5000);
            }
            String output;
            synchronized (collected) {
                output = collected.toString();
            }
            assertThat(finished).as("node finished within 180 s; output:\n" + output).isTrue();
            assertThat(process.exitValue()).as("node --test exit code; output:\n" + output).isZero();
            // every WebSocket session was closed and its backend connection ended
            Awaitility.await().atMost(java.time.Duration.ofSeconds(10))
                    .until(() -> broker.broker.openWebSocketSessions() == 0);
        }
    }

    static Path repoDir() {
        String dir = System.getProperty("palisade.repo.dir");
        return dir != null ? Path.of(dir) : Path.of("..").toAbsolutePath().normalize();
    }

    private static boolean commandExists(String command) {
        try {
            Process process = new ProcessBuilder(command, "--version").redirectErrorStream(true).start();
            process.getInputStream().readAllBytes();
            return process.waitFor(10, TimeUnit.SECONDS) && process.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }
}
