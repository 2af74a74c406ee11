package io.palisade.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.spi.PalisadeException;
import io.palisade.store.DatabaseRecord;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * The training run behind the JVM's ahead-of-time cache (JDK 25: classes loaded and linked, and the methods' profiles,
 * JEP 483 and 515). {@code bin/palisade} runs {@code palisade train} once per build under
 * {@code -XX:AOTCacheOutput} and starts {@code palisade serve} with {@code -XX:AOTCache}, so the JIT compiles the hot
 * paths from a server's first requests instead of after thousands of them (the broker's warm p99 on a fresh server:
 * README, "broker"). The workload is small and real, on a server of its own in {@code --data-dir} (created, and
 * removed at the end): a {@code process} database created through the API, SQL over HTTP on both broker routes, and
 * queries through the TLS proxy, one connection and a new connection per query; then the database is deleted.
 *
 * <p>It must not disturb a palisade running beside it: the directory must not exist yet; the ports are any free ones;
 * the server runs without the vm rung ({@code vm.enabled=false}), whose start-up reconcile would take another
 * palisade's network namespaces in the same pool for orphans; the process rung's reconcile lists only its own
 * directory and cgroups. Every request and query is bounded in time, and a shutdown hook deletes the database and
 * removes the directory when the run is stopped part-way (SIGTERM); {@code bin/jvm/aot-cache} bounds the whole run.
 */
@Command(name = "train", hidden = true, mixinStandardHelpOptions = true,
        description = "Run the workload the JVM's AOT cache is recorded from (bin/palisade runs it once per build).")
final class AotTraining implements Callable<Integer> {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    /** Bound on one query of the workload (over HTTP or through the proxy): a hung server fails the run. */
    private static final Duration QUERY_TIMEOUT = Duration.ofSeconds(30);
    /** The settings a training takes over from its palisade: whose users and cgroups its tenant gets. */
    private static final Set<String> TAKEN_OVER = Set.of("agent.service-user", "agent.cgroup-parent");

    @Option(names = "--data-dir", required = true, description = "A directory that does not exist yet; removed after")
    Path dataDir;

    @Option(names = "--requests", defaultValue = "5000", description = "Requests per broker route (default 5000)")
    int requests;

    @Parameters(paramLabel = "SERVE-ARGUMENTS", description = "After --: the arguments of the serve it trains for,"
            + " parsed as serve parses them; only agent.service-user and agent.cgroup-parent are taken over")
    List<String> serveArguments = List.of();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Whose users and cgroups the training's tenant gets: those two keys of serve's own configuration, if set. */
    private Map<String, String> takenOver() {
        ServerSettings serve = new ServerSettings();
        try {
            new CommandLine(serve).parseArgs(serveArguments.toArray(String[]::new));
        } catch (CommandLine.ParameterException e) {
            throw PalisadeException.invalid("serve's arguments: " + e.getMessage());
        }
        Map<String, String> values = new HashMap<>(serve.values());
        values.keySet().retainAll(TAKEN_OVER);
        return values;
    }

    @Override
    public Integer call() throws Exception {
        // the directory removed at the end is the one the server uses (absolute, normalized): "new/.." is not new
        if (Files.exists(dataDir) || Files.exists(dataDir.toAbsolutePath().normalize())
                || !dataDir.toAbsolutePath().normalize().equals(dataDir.toAbsolutePath())) {
            throw PalisadeException.invalid("--data-dir " + dataDir + " exists or is not a plain path; the training"
                    + " run needs a new directory (it removes it at the end)");
        }
        if (requests < 1) {
            throw PalisadeException.invalid("--requests must be at least 1, got " + requests);
        }
        PrintWriter out = spec.commandLine().getOut();
        long start = System.nanoTime();
        byte[] secret = new byte[16];
        new SecureRandom().nextBytes(secret);
        String key = "pk_train_" + HexFormat.of().formatHex(secret);
        Map<String, String> values = takenOver();
        out.println("training: taken over from serve's arguments: " + (values.isEmpty() ? "nothing"
                : String.join(" ", values.entrySet().stream().sorted(Map.Entry.comparingByKey())
                        .map(e -> e.getKey() + "=" + e.getValue()).toList())));
        // no vm rung: its start-up reconcile would take another palisade's network namespaces in the same pool for
        // orphans; the workload needs only the process rung. Creates answer within 60 s, before the client gives up.
        values.putAll(Map.of("server.data-dir", dataDir.toString(), "api.port", "0", "proxy.port", "0",
                "vm.enabled", "false", "api.create-wait", "60s"));
        ServerConfig config = ServerConfig.from(values);
        // a stop part-way (SIGTERM from bin/palisade's time limit, Ctrl-C), even during the start, still removes the
        // database (its OS user, cgroup and volume), stops the server and removes the directory
        Cleanup cleanup = new Cleanup(config);
        Thread hook = new Thread(cleanup::run, "palisade-train-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            train(cleanup.start.start(config, Optional.of(key)), key, out, start);
        } finally {
            cleanup.run();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs (or ran) the same cleanup
            }
        }
        out.printf("training: done in %d ms%n", elapsedMs(start));
        out.flush();
        return 0;
    }

    private void train(PalisadeServer server, String key, PrintWriter out, long start) throws Exception {
        Api api = new Api(server.apiBaseUrl(), key);
        JsonNode db = api.send("POST", "/v1/databases", "{\"label\":\"aot-training\",\"isolation\":\"process\"}",
                201);
        String id = db.get("id").asText();
        out.printf("training: server up and database %s created after %d ms%n", id, elapsedMs(start));
        out.flush();
        Exception failure = null;
        try {
            brokerRoutes(api, db);
            out.printf("training: %d requests on each broker route after %d ms%n", requests, elapsedMs(start));
            out.flush();
            JsonNode connection = api.send("GET", "/v1/databases/" + id + "/connection", null, 200);
            throughProxy(connection.get("jdbc_url").asText(), db);
            out.printf("training: queries through the proxy after %d ms%n", elapsedMs(start));
        } catch (Exception e) {
            failure = e;
        }
        try {
            api.send("DELETE", "/v1/databases/" + id, null, 204);
        } catch (Exception e) {
            if (failure == null) {
                throw e;
            }
            failure.addSuppressed(e);
        }
        if (failure != null) {
            throw failure;
        }
    }

    /**
     * Deletes the training server's databases, closes it and removes its directory, once, from whichever thread gets
     * here first: the run's end, or the shutdown hook, which waits for a start in progress (the JVM halts once the hooks
     * return, so a server still starting would be left running).
     */
    private static final class Cleanup {
        private static final Duration START_WAIT = Duration.ofSeconds(90);

        private final ServerConfig config;
        /** The training server's start, which a hook during it waits for. */
        final PendingStart start = new PendingStart();
        private boolean done;

        Cleanup(ServerConfig config) {
            this.config = config;
        }

        synchronized void run() {
            if (done) {
                return;
            }
            done = true;
            Optional<PalisadeServer> server = start.await(START_WAIT);
            try {
                server.ifPresent(this::deleteDatabases);
            } finally {
                server.ifPresent(PalisadeServer::close);
                try {
                    deleteTree(config.dataDir());
                } catch (IOException | UncheckedIOException e) {
                    System.err.println("training: cannot remove " + config.dataDir() + ": " + e.getMessage());
                }
            }
        }

        /** Each database with its volume, OS user and cgroup; what fails is said, and the rest still goes. */
        private void deleteDatabases(PalisadeServer running) {
            try {
                for (DatabaseRecord database : running.store().listByHost(config.hostId())) {
                    try {
                        running.service().delete(database.accountId(), database.id());
                    } catch (RuntimeException e) {
                        System.err.println("training: cannot delete " + database.id() + ": " + e.getMessage());
                    }
                }
            } catch (RuntimeException e) {
                System.err.println("training: cannot list the training server's databases: " + e.getMessage());
            }
        }
    }

    /** Neon's {@code POST /sql} and PandaStack's {@code v1/query}, as the broker bench and the README send them. */
    private void brokerRoutes(Api api, JsonNode db) throws IOException, InterruptedException {
        String connectionString = "postgres://" + enc(db.get("username").asText()) + ":"
                + enc(db.get("password").asText()) + "@" + db.get("id").asText() + ".db.localhost/"
                + enc(db.get("database").asText());
        HttpRequest neonRaw = HttpRequest.newBuilder(URI.create(api.base() + "/sql")).timeout(QUERY_TIMEOUT)
                .header("Neon-Connection-String", connectionString).header("Neon-Array-Mode", "true")
                .header("Neon-Raw-Text-Output", "true")
                .POST(HttpRequest.BodyPublishers.ofString("{\"query\":\"SELECT 1\",\"params\":[]}"))
                .build();
        HttpRequest neonTyped = HttpRequest.newBuilder(URI.create(api.base() + "/sql")).timeout(QUERY_TIMEOUT)
                .header("Neon-Connection-String", connectionString)
                .POST(HttpRequest.BodyPublishers.ofString("{\"query\":\"SELECT $1::int AS n\",\"params\":[1]}"))
                .build();
        HttpRequest panda = HttpRequest.newBuilder(URI.create(db.get("broker_url").asText() + "/v1/query"))
                .timeout(QUERY_TIMEOUT)
                .header("Authorization", "Bearer " + db.get("broker_token").asText())
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"database\":\"pandastack\",\"sql\":\"SELECT 1\"}"))
                .build();
        for (int i = 0; i < requests; i++) {
            api.expect(i % 4 == 3 ? neonTyped : neonRaw, 200);
            api.expect(panda, 200);
        }
    }

    /** One connection with many queries, then a new connection per query, through the TLS proxy with PgJDBC. */
    private void throughProxy(String jdbcUrl, JsonNode db) throws SQLException {
        Properties login = new Properties();
        login.setProperty("user", db.get("username").asText());
        login.setProperty("password", db.get("password").asText());
        login.setProperty("connectTimeout", Long.toString(QUERY_TIMEOUT.toSeconds()));
        login.setProperty("socketTimeout", Long.toString(QUERY_TIMEOUT.toSeconds()));
        try (Connection connection = DriverManager.getConnection(jdbcUrl, login);
                Statement statement = connection.createStatement()) {
            for (int i = 0; i < requests / 5; i++) {
                try (ResultSet rows = statement.executeQuery("SELECT 1")) {
                    rows.next();
                }
            }
        }
        for (int i = 0; i < 20; i++) {
            try (Connection connection = DriverManager.getConnection(jdbcUrl, login)) {
                connection.isValid(5);
            }
        }
    }

    private static long elapsedMs(long since) {
        return (System.nanoTime() - since) / 1_000_000;
    }

    private static String enc(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(path -> {
                try {
                    Files.delete(path);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
    }

    /** The training server's REST API with its admin key; an unexpected status fails the run with the body. */
    private record Api(String base, String key) {
        private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        /** A create starts a PostgreSQL; a delete stops one. Nothing else takes more than a fraction of a second. */
        private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(120);
        private static final int BODY_SHOWN = 500;

        JsonNode send(String method, String path, String body, int status) throws IOException, InterruptedException {
            HttpRequest request = HttpRequest.newBuilder(URI.create(base + path))
                    .header("Authorization", "Bearer " + key).header("Content-Type", "application/json")
                    .timeout(REQUEST_TIMEOUT)
                    .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                            : HttpRequest.BodyPublishers.ofString(body))
                    .build();
            String answer = expect(request, status);
            return answer.isEmpty() ? MAPPER.nullNode() : MAPPER.readTree(answer);
        }

        String expect(HttpRequest request, int status) throws IOException, InterruptedException {
            HttpResponse<String> response = HTTP.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != status) {
                String answer = response.body();
                throw new IllegalStateException(request.method() + " " + request.uri().getPath() + " answered "
                        + response.statusCode() + " instead of " + status + ": "
                        + (answer.length() > BODY_SHOWN ? answer.substring(0, BODY_SHOWN) + "…" : answer));
            }
            return response.body();
        }
    }
}
