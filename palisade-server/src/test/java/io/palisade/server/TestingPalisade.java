package io.palisade.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.host.ServiceUser;
import io.palisade.host.TenantUsers;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.SecretBox;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A real palisade server for tests, in this JVM: embedded store, process driver, REST API on a free port, state in a
 * fresh directory under target/. Restartable on the same state. Close stops everything and removes the directory (or,
 * for a server opened on a given data directory, leaves it to its owner).
 */
public final class TestingPalisade implements AutoCloseable {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final Path dataDir;
    private final String adminKey;
    private final boolean ownsDataDir;
    private final Map<String, String> settings;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private PalisadeServer server;

    public TestingPalisade() {
        this(Map.of());
    }

    public TestingPalisade(Map<String, String> extraSettings) {
        this(TestingDirectories.newWorkDir("palisade").resolve("data"), "pk_test_" + SecretBox.randomSecret(24), true,
                extraSettings);
    }

    private TestingPalisade(Path dataDir, String adminKey, boolean ownsDataDir, Map<String, String> extraSettings) {
        this.dataDir = dataDir;
        this.adminKey = adminKey;
        this.ownsDataDir = ownsDataDir;
        this.settings = settings(dataDir, extraSettings);
        start();
    }

    /** The configuration a test server on {@code dataDir} runs with: the tests' defaults, then {@code extraSettings}. */
    static Map<String, String> settings(Path dataDir, Map<String, String> extraSettings) {
        Map<String, String> base = new LinkedHashMap<>();
        base.put("server.data-dir", dataDir.toString());
        base.put("api.port", "0");
        base.put("proxy.port", Integer.toString(io.palisade.host.PostgresServer.freePort()));
        base.put("agent.cgroup-parent", "palisade-test");
        base.put("vm.image-dir", TestingDirectories.repoDir().resolve(".cache/guest/current").toString());
        base.put("vm.network-pool", networkPool(dataDir));
        base.put("vm.prepare-template", "false"); // tests that create vm databases build it on demand, as before
        base.putAll(extraSettings);
        return Map.copyOf(base);
    }

    /**
     * A /22 of 10.224.0.0/12 chosen by the data directory: a vm driver removes the namespaces in its own pool that it
     * does not know, so palisades running side by side (parallel test runs) must not share one; a restart on the same
     * data directory gets the same pool back.
     */
    private static String networkPool(Path dataDir) {
        int slot = Math.floorMod(dataDir.toAbsolutePath().toString().hashCode(), 1024);
        return "10." + (224 + slot / 64) + "." + (slot % 64) * 4 + ".0/22";
    }

    /**
     * A server on a data directory that outlives it, e.g. the one a SIGKILLed {@code palisade serve}
     * ({@link TestingPalisadeProcess}) left: it takes over what runs there, as any restart does. {@code adminKey} is
     * the key of the directory's admin account (created with it if the directory is new). Close stops the server and
     * leaves the directory.
     */
    public static TestingPalisade onDataDir(Path dataDir, String adminKey, Map<String, String> extraSettings) {
        return new TestingPalisade(dataDir, adminKey, false, extraSettings);
    }

    /** A server on which {@code isolation} must be usable (see {@link #requireUsable}); closed again if it is not. */
    public static TestingPalisade requiring(String isolation, Map<String, String> extraSettings) {
        TestingPalisade palisade = new TestingPalisade(extraSettings);
        try {
            palisade.requireUsable(isolation);
            return palisade;
        } catch (RuntimeException | Error e) {
            palisade.close();
            throw e;
        }
    }

    private void start() {
        server = PalisadeServer.start(ServerConfig.from(settings), Optional.of(adminKey));
    }

    /** Stops palisade (gracefully, as SIGTERM would) and starts it again on the same state. */
    public void restart() {
        server.close();
        start();
    }

    public PalisadeServer server() {
        return server;
    }

    public Path dataDir() {
        return dataDir;
    }

    public String adminKey() {
        return adminKey;
    }

    public String apiUrl() {
        return "http://127.0.0.1:" + server.apiPort();
    }

    /**
     * Makes sure an isolation rung is usable here: in CI it must be (the test fails); elsewhere the test is skipped with
     * the reason printed.
     */
    public void requireUsable(String isolation) {
        var probe = server.service().probes().get(io.palisade.spi.Rung.fromWire(isolation));
        if (probe == null || !probe.usable()) {
            String reason = probe == null ? "no " + isolation + " driver" : probe.reason();
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError("the " + isolation + " rung must be usable in CI: " + reason);
            }
            System.out.println("SKIPPED (" + isolation + " rung unusable here): " + reason);
            org.junit.jupiter.api.Assumptions.abort(reason);
        }
    }

    /** Creates another account with its own key; returns the key. */
    public String newAccount(String name) {
        String key = "pk_" + SecretBox.randomSecret(30);
        server.store().createAccount("acct-" + name, name);
        server.store().addApiKey("acct-" + name, key);
        return key;
    }

    public record Response(int status, String contentType, String body) {
        public JsonNode json() {
            try {
                return MAPPER.readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON: " + body, e);
            }
        }
    }

    public Response request(String method, String path, String body, String key) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(apiUrl() + path)).timeout(Duration.ofMinutes(3));
        if (key != null) {
            builder.header("Authorization", "Bearer " + key);
        }
        builder.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) {
            builder.header("Content-Type", "application/json");
        }
        try {
            HttpResponse<String> response = http.send(builder.build(), HttpResponse.BodyHandlers.ofString());
            return new Response(response.statusCode(), response.headers().firstValue("Content-Type").orElse(""), response.body());
        } catch (IOException e) {
            throw new AssertionError(method + " " + path + " failed: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    public Response get(String path) {
        return request("GET", path, null, adminKey);
    }

    public Response post(String path, String body) {
        return request("POST", path, body, adminKey);
    }

    public Response delete(String path) {
        return request("DELETE", path, null, adminKey);
    }

    /**
     * Stops the server; a fixture that owns its data directory deletes it, and with it removes the OS users of the
     * databases a test left behind (the server keeps a database's user while the database exists, so without this each
     * one would stay on the host for good).
     */
    @Override
    public void close() {
        if (server != null) {
            List<String> left = ownsDataDir
                    ? server.store().listByHost(server.config().hostId()).stream().map(DatabaseRecord::id).toList()
                    : List.of();
            server.close();
            if (!left.isEmpty()) {
                ServiceUser user = ServiceUser.resolve(server.config().serviceUser());
                for (TenantUsers users : List.of(new TenantUsers(user), new TenantUsers(user, "vm"))) {
                    left.forEach(users::remove);
                }
            }
        }
        if (ownsDataDir) {
            TestingDirectories.deleteRecursively(dataDir.getParent());
        }
    }
}
