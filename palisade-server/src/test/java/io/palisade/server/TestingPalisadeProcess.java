package io.palisade.server;

import io.palisade.host.Processes;
import io.palisade.store.SecretBox;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code palisade serve} as a separate OS process on a given data directory, so tests can SIGKILL it. Start waits for
 * {@code /v1/health} = 200 (bounded, failing with the log tail if the process dies); close kills it.
 */
final class TestingPalisadeProcess implements AutoCloseable {
    private final Process process;
    private volatile int port;
    private final Path log;

    TestingPalisadeProcess(Path dataDir, String apiKey) throws IOException {
        this(dataDir, apiKey, Map.of());
    }

    /** As above, with {@code extraSettings} in place of the defaults of {@link #serveCommand}. */
    TestingPalisadeProcess(Path dataDir, String apiKey, Map<String, String> extraSettings) throws IOException {
        this.log = dataDir.resolveSibling("serve-" + SecretBox.randomSecret(6) + ".log");
        Files.createDirectories(dataDir);
        List<String> command = serveCommand(dataDir, extraSettings);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        builder.environment().put("PALISADE_BOOTSTRAP_API_KEY", apiKey);
        this.process = builder.start();
        awaitHealthy();
    }

    /**
     * {@code palisade serve} in a JVM of its own on {@code dataDir}: any free ports, this module's test class path, a
     * test cgroup parent and no template VM beside the ones a test counts.
     */
    static List<String> serveCommand(Path dataDir) {
        return serveCommand(dataDir, Map.of());
    }

    /** As {@link #serveCommand(Path)}, each of {@code extraSettings} replacing the default of its key. */
    static List<String> serveCommand(Path dataDir, Map<String, String> extraSettings) {
        Map<String, String> settings = new LinkedHashMap<>();
        settings.put("server.data-dir", dataDir.toString());
        settings.put("api.port", "0");
        settings.put("proxy.port", "0");
        settings.put("vm.network-pool", "10.220.0.0/16");
        settings.put("vm.image-dir", io.palisade.testing.TestingDirectories.repoDir().resolve(".cache/guest/current")
                .toString());
        settings.put("agent.cgroup-parent", "palisade-test");
        settings.put("agent.reconcile-interval", "1s");
        settings.put("vm.prepare-template", "false"); // no template VM beside the ones a test counts
        settings.putAll(extraSettings);
        List<String> command = new ArrayList<>(List.of(
                ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"),
                "io.palisade.server.Main", "serve"));
        settings.forEach((key, value) -> {
            command.add("-c");
            command.add(key + "=" + value);
        });
        return command;
    }

    private void awaitHealthy() {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("palisade serve exited with " + process.exitValue() + ": " + logTail());
            }
            if (port == 0) {
                // both listeners take any free port (no race between picking and binding); the banner names the API's
                for (String line : Processes.tailFile(log, 200)) {
                    int at = line.indexOf("REST API:  http://127.0.0.1:");
                    if (at >= 0) {
                        String rest = line.substring(at + "REST API:  http://127.0.0.1:".length());
                        port = Integer.parseInt(rest.substring(0, rest.indexOf(' ')).strip());
                    }
                }
                if (port == 0) {
                    Processes.sleep(Duration.ofMillis(100));
                    continue;
                }
            }
            try {
                HttpResponse<Void> response = http.send(
                        HttpRequest.newBuilder(URI.create(url() + "/v1/health")).timeout(Duration.ofSeconds(2)).build(),
                        HttpResponse.BodyHandlers.discarding());
                if (response.statusCode() == 200) {
                    return;
                }
            } catch (IOException e) {
                // not listening yet
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            Processes.sleep(Duration.ofMillis(100));
        }
        kill();
        throw new IllegalStateException("palisade serve not healthy within 120 s: " + logTail());
    }

    /** The {@code palisade serve} process, e.g. to inspect its children. */
    ProcessHandle handle() {
        return process.toHandle();
    }

    String url() {
        return "http://127.0.0.1:" + port;
    }

    String logTail() {
        return String.join("\n", Processes.tailFile(log, 80));
    }

    /** SIGKILL: no shutdown hook runs; children (PostgreSQL servers) are left running as orphans. */
    void kill() {
        process.destroyForcibly();
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** SIGTERM and wait: the graceful path. */
    void stop() {
        process.destroy();
        try {
            if (!process.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)) {
                kill();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            stop();
        }
    }
}
