package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import io.javalin.http.HttpStatus;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.TenantCredentials;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MetadataStore;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * REST API v1 on Javalin: databases, health. Every error leaves as {@code application/problem+json}; no stack trace ever
 * reaches a client. Thread-safe (Javalin's handler threads; all state is in the services).
 */
public final class ApiServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ApiServer.class);
    public static final int MAX_BODY_BYTES = 64 * 1024;
    /**
     * The buffer Javalin allocates for every response it copies into Jetty's (its default is Jetty's whole output
     * buffer, 32 KiB, a garbage young collections pay for on every broker request). Jetty still buffers 32 KiB.
     */
    private static final int RESPONSE_COPY_BYTES = 4 * 1024;

    private final Javalin app;
    private final MetadataStore store;
    private final Supplier<DatabaseService> service;
    private final ConnectionInfo connections;
    private final Supplier<Map<String, Object>> healthExtras;
    private final Supplier<RestoreService> restores;
    private final RequestHeadDeadline headDeadline = new RequestHeadDeadline(RequestHeadDeadline.LIMIT);
    private volatile boolean ready;

    /**
     * @param tls serve HTTPS with this certificate instead of plain HTTP
     * @param service supplies the database service once the server is ready (health says 503 before)
     * @param extraRoutes lets other components (the broker, metrics) add routes before start
     */
    public ApiServer(
            String host,
            int port,
            java.util.Optional<ApiTls> tls,
            MetadataStore store,
            Supplier<DatabaseService> service,
            ConnectionInfo connections,
            Supplier<Map<String, Object>> healthExtras,
            Supplier<RestoreService> restores,
            Consumer<Javalin> extraRoutes) {
        requireNonNull(tls, "tls is null");
        this.restores = requireNonNull(restores, "restores is null");
        this.store = requireNonNull(store, "store is null");
        this.service = requireNonNull(service, "service is null");
        this.connections = requireNonNull(connections, "connections is null");
        this.healthExtras = requireNonNull(healthExtras, "healthExtras is null");
        this.app = Javalin.create(config -> {
            config.showJavalinBanner = false;
            config.jsonMapper(new io.javalin.json.JavalinJackson(Json.MAPPER, true));
            config.http.maxRequestSize = MAX_BODY_BYTES;
            config.http.responseBufferSize = RESPONSE_COPY_BYTES;
            config.useVirtualThreads = true;
            config.jetty.defaultHost = host;
            config.jetty.defaultPort = port;
            // a connector of our own replaces Javalin's plain one
            tls.ifPresent(material -> config.jetty.addConnector((server, http) ->
                    material.connector(server, http, host, port)));
        });
        routes();
        extraRoutes.accept(app);
        errors();
        app.start();
        headDeadline.install(app.jettyServer().server().getConnectors());
        log.info("REST API listening on {}://{}:{}", tls.isPresent() ? "https" : "http", host, app.port());
    }

    public int port() {
        return app.port();
    }

    public void markReady() {
        ready = true;
    }

    private void routes() {
        app.get("/v1/health", this::health);
        app.before("/v1/databases*", ctx -> {
            if (!isBrokerProxy(ctx.path())) { // the broker checks its own token (or this API key) on broker_url
                authenticate(ctx);
            }
        });
        app.before("/v1/databases", ctx -> authenticate(ctx));
        app.post("/v1/databases", this::create);
        app.get("/v1/databases", this::list);
        app.get("/v1/databases/{id}", ctx -> {
            DatabaseRecord db = db(ctx);
            Map<String, Object> out = describe(db);
            MoveRoutes.unfinished(service(), db.id()).ifPresent(move -> out.put("move", move));
            ctx.json(out);
        });
        app.get("/v1/databases/{id}/connection", this::connection);
        app.get("/v1/databases/{id}/stats", this::stats);
        app.get("/v1/databases/{id}/logs", this::logs);
        app.post("/v1/databases/{id}/credentials/rotate", this::rotate);
        app.post("/v1/databases/{id}/restart", ctx -> ctx.json(describe(service().restart(account(ctx), ctx.pathParam("id")))));
        app.post("/v1/databases/{id}/suspend", ctx -> ctx.json(describe(service().suspend(account(ctx), ctx.pathParam("id")))));
        app.post("/v1/databases/{id}/resume", ctx -> ctx.json(describe(service().resume(account(ctx), ctx.pathParam("id")))));
        app.delete("/v1/databases/{id}", ctx -> {
            service().delete(account(ctx), ctx.pathParam("id"), BackupRoutes.keepBackups(ctx));
            ctx.status(HttpStatus.NO_CONTENT);
        });
        new BackupRoutes(this::restores, connections).register(app);
        new MoveRoutes(this::service).register(app);
        OpenApiDocument.load().register(app);
    }

    private void errors() {
        app.exception(PalisadeException.class, (e, ctx) -> {
            if (e.errorCode().category() == ErrorCode.Category.INTERNAL) {
                log.warn("{} {} failed: {}", ctx.method(), ctx.path(), e.getMessage(), e);
            }
            Problems.send(ctx, e.errorCode(), e.getMessage());
        });
        app.exception(HttpResponseException.class, (e, ctx) -> {
            ErrorCode code = switch (e.getStatus()) {
                case 413 -> ErrorCode.PAYLOAD_TOO_LARGE;
                case 404 -> ErrorCode.NOT_FOUND;
                case 405 -> ErrorCode.METHOD_NOT_ALLOWED;
                default -> ErrorCode.fromHttpStatus(e.getStatus());
            };
            String detail = code == ErrorCode.PAYLOAD_TOO_LARGE
                    ? "request body exceeds " + MAX_BODY_BYTES + " bytes"
                    : e.getMessage();
            Problems.send(ctx, code, detail);
        });
        app.exception(Exception.class, (e, ctx) -> {
            log.error("{} {} failed unexpectedly", ctx.method(), ctx.path(), e);
            Problems.send(ctx, ErrorCode.INTERNAL, "internal error; the server log has details (request " + ctx.path() + ")");
        });
        app.error(404, ctx -> {
            if (!isProblem(ctx)) {
                Problems.send(ctx, ErrorCode.NOT_FOUND, "no route for " + ctx.method() + " " + ctx.path());
            }
        });
        app.error(405, ctx -> {
            if (!isProblem(ctx)) {
                Problems.send(ctx, ErrorCode.METHOD_NOT_ALLOWED, ctx.method() + " is not allowed on " + ctx.path());
            }
        });
        app.error(413, ctx -> {
            if (!isProblem(ctx)) {
                Problems.send(ctx, ErrorCode.PAYLOAD_TOO_LARGE, "request body exceeds " + MAX_BODY_BYTES + " bytes");
            }
        });
        app.error(500, ctx -> {
            if (!isProblem(ctx)) {
                Problems.send(ctx, ErrorCode.INTERNAL, "internal error");
            }
        });
    }

    /** True when the response must be left alone: already problem+json, or a broker route with its own error shape. */
    private static boolean isProblem(Context ctx) {
        String path = ctx.path();
        if (path.equals("/sql") || path.startsWith("/v2") || isBrokerProxy(path)) {
            return true;
        }
        String type = ctx.res().getContentType();
        // the web console answers its own errors as HTML pages
        return type != null && (type.startsWith(Problems.CONTENT_TYPE) || path.startsWith("/console")
                && type.startsWith("text/html"));
    }

    /** Whether a path lies under a database's {@code broker_url} ({@code /v1/databases/{id}/proxy/...}). */
    static boolean isBrokerProxy(String path) {
        if (!path.startsWith("/v1/databases/")) {
            return false;
        }
        int slash = path.indexOf('/', "/v1/databases/".length());
        return slash > 0 && path.startsWith("/proxy", slash)
                && (path.length() == slash + 6 || path.charAt(slash + 6) == '/');
    }

    // handlers

    private void health(Context ctx) {
        Map<String, Object> body = new LinkedHashMap<>();
        DatabaseService svc = ready ? service.get() : null;
        body.put("status", svc == null ? "starting" : "ok");
        if (svc != null) {
            body.put("host", svc.hostId());
            body.put("default_isolation", svc.defaultIsolation().wireName());
            body.put("isolation", svc.probes().entrySet().stream()
                    .map(p -> probe(p.getValue(), p.getKey() == svc.defaultIsolation()))
                    .toList());
            body.put("rungs", java.util.Arrays.stream(io.palisade.spi.Rung.values()).map(rung -> {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("name", rung.wireName());
                DriverProbe probe = svc.probes().get(rung);
                row.put("available", probe != null && probe.usable());
                row.put("isolation", rung.isolation());
                row.put("suspend", rung.suspend());
                Map<String, String> details = svc.healthDetails(rung);
                if (!details.isEmpty()) {
                    row.put("details", details);
                }
                return row;
            }).toList());
        }
        body.putAll(healthExtras.get());
        ctx.status(svc == null ? 503 : 200).json(body);
    }

    private static Map<String, Object> probe(DriverProbe probe, boolean isDefault) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("name", probe.driver());
        out.put("usable", probe.usable());
        out.put("default", isDefault);
        out.put("prefers_default", probe.preferredDefault());
        out.put("accelerator", probe.accelerator());
        out.put("reason", probe.reason());
        return out;
    }

    private void create(Context ctx) {
        byte[] body = ctx.bodyAsBytes();
        if (body.length > MAX_BODY_BYTES) {
            throw new PalisadeException(ErrorCode.PAYLOAD_TOO_LARGE, "request body exceeds " + MAX_BODY_BYTES + " bytes");
        }
        String contentType = ctx.contentType();
        if (body.length > 0 && contentType != null && !contentType.startsWith("application/json")
                && !contentType.startsWith("text/plain") && !contentType.startsWith("application/x-www-form-urlencoded")) {
            throw new PalisadeException(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send the body as application/json, not " + contentType);
        }
        CreateDatabaseRequest request = isBlank(body) ? CreateDatabaseRequest.empty() : Json.read(body, CreateDatabaseRequest.class);
        if (request.restore() != null) {
            created(ctx, connections, restores().restoreAsNew(account(ctx), request));
            return;
        }
        created(ctx, connections, service().create(account(ctx), request));
    }

    /** The answer to a create, restore or fork: the database with its secrets, 201 when running, else 202. */
    static void created(Context ctx, ConnectionInfo connections, DatabaseService.Created created) {
        ctx.status(created.database().state() == DatabaseState.RUNNING ? 201 : 202);
        ctx.header("Location", "/v1/databases/" + created.database().id());
        ctx.json(withSecrets(connections, created));
    }

    static Map<String, Object> withSecrets(ConnectionInfo connections, DatabaseService.Created created) {
        DatabaseRecord db = created.database();
        Map<String, Object> out = describe(db);
        out.putAll(connections.describe(db, new TenantCredentials(db.username(), db.database(), created.password())));
        out.put("username", db.username());
        out.put("password", created.password());
        out.put("broker_url", connections.brokerUrl(db));
        out.put("broker_token", created.brokerToken());
        out.put("template", "postgres-" + db.version().major()); // PandaStack's create response names its template
        return out;
    }

    private RestoreService restores() {
        service();
        RestoreService restores = this.restores.get();
        if (restores == null) {
            throw new PalisadeException(ErrorCode.CONFLICT, "backups are disabled on this server (backup.enabled=false)");
        }
        return restores;
    }

    private static boolean isBlank(byte[] body) {
        for (byte b : body) {
            if (!Character.isWhitespace(b)) {
                return false;
            }
        }
        return true;
    }

    private void list(Context ctx) {
        List<Map<String, Object>> items = service().list(account(ctx)).stream().map(ApiServer::describe).toList();
        ctx.json(Map.of("databases", items));
    }

    private void connection(Context ctx) {
        DatabaseRecord db = db(ctx);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", db.id());
        out.put("status", db.state().wireName());
        out.putAll(connections.describe(db, service().credentials(db)));
        out.put("username", db.username());
        out.put("password", service().credentials(db).password());
        out.put("database", db.database());
        out.put("broker_url", connections.brokerUrl(db));
        out.put("broker_token", service().brokerToken(db));
        ctx.json(out);
    }

    private void stats(Context ctx) {
        DatabaseRecord db = db(ctx);
        InstanceStats stats = service().stats(account(ctx), db.id());
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", db.id());
        out.put("status", db.state().wireName());
        out.put("running", stats.running());
        out.put("pid", stats.pid());
        out.put("uptime_seconds", stats.uptimeSeconds());
        out.put("cpu_millis", stats.cpuMillis());
        out.put("memory_bytes", stats.memoryBytes());
        out.put("disk_bytes", stats.diskBytes());
        out.put("connections", stats.connections());
        ctx.json(out);
    }

    private void logs(Context ctx) {
        DatabaseRecord db = db(ctx);
        int lines = 100;
        String param = ctx.queryParam("lines");
        if (param != null) {
            try {
                lines = Integer.parseInt(param);
            } catch (NumberFormatException e) {
                throw PalisadeException.invalid("lines must be an integer between 1 and 10000, got '" + param + "'");
            }
            if (lines < 1 || lines > 10_000) {
                throw PalisadeException.invalid("lines must be between 1 and 10000, got " + lines);
            }
        }
        ctx.json(Map.of("id", db.id(), "lines", service().logs(account(ctx), db.id(), lines)));
    }

    private void rotate(Context ctx) {
        DatabaseService.Created rotated = service().rotateCredentials(account(ctx), ctx.pathParam("id"));
        DatabaseRecord db = rotated.database();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", db.id());
        out.putAll(connections.describe(db, new TenantCredentials(db.username(), db.database(), rotated.password())));
        out.put("username", db.username());
        out.put("password", rotated.password());
        out.put("broker_url", connections.brokerUrl(db));
        out.put("broker_token", rotated.brokerToken());
        ctx.json(out);
    }

    // helpers

    static Map<String, Object> describe(DatabaseRecord db) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", db.id());
        out.put("label", db.label());
        out.put("status", db.state().wireName());
        if (db.stateReason() != null) {
            out.put("status_reason", db.stateReason());
        }
        out.put("isolation", db.isolation().wireName());
        out.put("version", db.version().major());
        Map<String, Object> plan = new LinkedHashMap<>();
        plan.put("name", db.plan().name());
        plan.put("cpu", db.plan().cpu());
        plan.put("memory_mb", db.plan().memoryMb());
        plan.put("disk_mb", db.plan().diskMb());
        plan.put("iops", db.plan().iops());
        out.put("plan", plan);
        out.put("persistent", db.persistent());
        out.put("ttl_seconds", db.ttlSeconds());
        out.put("expires_at", db.expiresAt());
        out.put("suspend_after_seconds", db.suspendAfterSeconds() == null ? "never" : db.suspendAfterSeconds());
        out.put("idle_seconds", Math.max(0, Duration.between(db.lastActiveAt(), Instant.now()).toSeconds()));
        out.put("pinned_host", db.host());
        out.put("database", db.database());
        out.put("username", db.username());
        out.put("labels", db.labels());
        out.put("created_at", db.createdAt());
        out.put("updated_at", db.updatedAt());
        return out;
    }

    private DatabaseRecord db(Context ctx) {
        return service().get(account(ctx), ctx.pathParam("id"));
    }

    private DatabaseService service() {
        if (!ready) {
            throw new PalisadeException(ErrorCode.NOT_READY, "palisade is starting (reconciling instances); retry in a moment");
        }
        return service.get();
    }

    private void authenticate(Context ctx) {
        String header = ctx.header("Authorization");
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7) || header.length() <= 7) {
            ctx.header("WWW-Authenticate", "Bearer realm=\"palisade\"");
            throw new PalisadeException(ErrorCode.UNAUTHENTICATED,
                    "missing API key: send 'Authorization: Bearer <api-key>'");
        }
        String key = header.substring(7).strip();
        String account = store.accountForKey(key).orElseThrow(() -> {
            ctx.header("WWW-Authenticate", "Bearer realm=\"palisade\", error=\"invalid_token\"");
            return new PalisadeException(ErrorCode.UNAUTHENTICATED, "the API key is not valid");
        });
        ctx.attribute("account", account);
    }

    static String account(Context ctx) {
        String account = ctx.attribute("account");
        if (account == null) {
            throw new PalisadeException(ErrorCode.UNAUTHENTICATED, "missing API key");
        }
        return account;
    }

    @Override
    public void close() {
        app.stop();
        headDeadline.close();
    }
}
