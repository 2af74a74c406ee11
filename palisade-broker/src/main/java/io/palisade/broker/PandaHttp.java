package io.palisade.broker;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.micrometer.core.instrument.Timer;
import io.palisade.broker.ConnectionPool.Lease;
import io.palisade.broker.HttpSupport.BoundedBuffer;
import io.palisade.broker.HttpSupport.ResponseTooLarge;
import io.palisade.broker.HttpSupport.TooLarge;
import io.palisade.broker.PandaRequest.Single;
import io.palisade.broker.PandaRequest.Statement;
import io.palisade.broker.PandaRequest.Transaction;
import io.palisade.broker.SqlBroker.Access;
import io.palisade.broker.SqlBroker.NoAccess;
import io.palisade.broker.pg.PgConnection;
import io.palisade.broker.pg.PgConnection.Aborted;
import io.palisade.broker.pg.PgError;
import io.palisade.broker.pg.QueryResult;
import io.palisade.spi.Backend;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.TenantCredentials;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BooleanSupplier;

/**
 * PandaStack's broker API under {@code broker_url} = {@value #BASE}: {@code POST v1/query}, {@code v1/exec},
 * {@code v1/transaction}, {@code GET v1/health} (no authentication needed), {@code v1/info} and the
 * {@code v1/databases} routes ({@link PandaDatabases}). Callers send {@code Authorization: Bearer} with the database's
 * broker token or its account's API key; anything else, an unknown id and another account's database all get the same
 * 401 {@code {"error":"unauthorized"}}, decided on the host before a body is read or the database woken. The shapes are
 * in {@code docs/broker.md}. Stateless apart from the broker.
 */
final class PandaHttp {
    static final String BASE = "/v1/databases/{id}/proxy";
    /** The database name PandaStack gives every instance: it means the tenant's own database here. */
    static final String DEFAULT_DATABASE = "pandastack";
    private static final Duration GRACE = Duration.ofSeconds(1);

    private final SqlBroker broker;

    PandaHttp(SqlBroker broker) {
        this.broker = broker;
    }

    void register(Javalin app) {
        app.post(BASE + "/v1/query", ctx -> handle(ctx, "query", true, true, this::query));
        app.post(BASE + "/v1/exec", ctx -> handle(ctx, "exec", true, true, this::exec));
        app.post(BASE + "/v1/transaction", ctx -> handle(ctx, "transaction", true, true, this::transaction));
        app.get(BASE + "/v1/health", ctx -> handle(ctx, "health", false, false, this::health));
        app.get(BASE + "/v1/info", ctx -> handle(ctx, "info", false, true, this::info));
        PandaDatabases databases = new PandaDatabases(broker);
        app.get(BASE + "/v1/databases", ctx -> handle(ctx, "databases", false, true, databases::list));
        app.post(BASE + "/v1/databases", ctx -> handle(ctx, "databases", true, true, databases::create));
        app.delete(BASE + "/v1/databases/{name}", ctx -> handle(ctx, "databases", false, true, databases::drop));
    }

    @FunctionalInterface
    interface Work {
        /** Writes the answer's JSON and returns its status. */
        int run(Call call, JsonGenerator json) throws PandaError, IOException, NoAccess;
    }

    /**
     * One request of an authenticated caller (or of nobody, on health): opens at most one pooled connection, to the
     * database the body names, and gives it back at the end. Confined to the request's thread.
     */
    final class Call {
        final Context ctx;
        final String databaseId;
        /** The tenant's login; empty only on health without valid credentials. */
        final Optional<TenantCredentials> login;
        final BooleanSupplier gone;
        private Backend backend;
        private Lease lease;
        private boolean sessionChanged;

        Call(Context ctx, String databaseId, Optional<TenantCredentials> login) {
            this.ctx = ctx;
            this.databaseId = databaseId;
            this.login = login;
            this.gone = HttpSupport.clientGone(ctx);
        }

        TenantCredentials tenant() {
            return login.orElseThrow();
        }

        JsonNode body() throws PandaError {
            return PandaRequest.object(ctx.attribute(BODY), broker.json);
        }

        Backend backend() throws NoAccess {
            if (backend == null) {
                backend = broker.resolve(databaseId);
            }
            return backend;
        }

        /** Whether {@code name} means the tenant's own database (its name, or PandaStack's {@code pandastack}). */
        boolean isOwnDatabase(String name) {
            return name.equals(tenant().database()) || name.equals(DEFAULT_DATABASE);
        }

        /** A connection to {@code database} (the tenant's own, or one made inside its server) as the tenant. */
        PgConnection open(String database) throws NoAccess, PandaError, IOException {
            if (lease != null) {
                throw new IllegalStateException("a request opens one connection");
            }
            TenantCredentials tenant = tenant();
            String target = isOwnDatabase(database) ? tenant.database() : database;
            Backend resolved = backend();
            if (resolved.map(tenant.username(), target).isEmpty()) {
                throw PandaError.badRequest("unknown database"); // a shared server: only the tenant's own is reachable
            }
            try {
                lease = broker.login(resolved, new Access(databaseId, tenant.username(), target, tenant.password()));
            } catch (PgError e) {
                if (e.sqlState().equals("3D000")) {
                    throw PandaError.badRequest("unknown database");
                }
                throw e;
            }
            return lease.connection;
        }

        void track(List<QueryResult> results) {
            sessionChanged |= SqlBroker.changesSession(results);
        }

        PgConnection.Guard guard(Duration timeout) {
            return new PgConnection.Guard(System.nanoTime() + timeout.plus(GRACE).toNanos(), gone);
        }

        void close() {
            if (lease != null) {
                broker.giveBack(lease, sessionChanged);
            }
        }
    }

    private static final String BODY = "palisade.broker.body";

    private int query(Call call, JsonGenerator json) throws PandaError, IOException, NoAccess {
        Single request = PandaRequest.single(call.body(), broker.config.maxRows());
        PgConnection connection = call.open(request.database());
        Duration timeout = request.timeout();
        long start = System.nanoTime();
        setTimeout(call, connection, timeout);
        Statement statement = request.statement();
        QueryResult result = connection.execute(statement.sql(), statement.params(), request.maxRows(),
                broker.config.maxResponseBytes(), call.guard(timeout));
        call.track(List.of(result));
        json.writeStartObject();
        PandaJson.writeRows(json, result);
        json.writeNumberField("duration_ms", millisSince(start));
        json.writeEndObject();
        return 200;
    }

    private int exec(Call call, JsonGenerator json) throws PandaError, IOException, NoAccess {
        Single request = PandaRequest.single(call.body(), broker.config.maxRows());
        PgConnection connection = call.open(request.database());
        Duration timeout = request.timeout();
        long start = System.nanoTime();
        setTimeout(call, connection, timeout);
        Statement statement = request.statement();
        List<QueryResult> results;
        if (statement.params().isEmpty()) {
            // no parameters: the simple protocol, so a script of several statements runs as one request
            results = connection.simpleQuery(statement.sql(), broker.config.maxRows(),
                    broker.config.maxResponseBytes(), call.guard(timeout));
        } else {
            results = List.of(connection.execute(statement.sql(), statement.params(), broker.config.maxRows(),
                    broker.config.maxResponseBytes(), call.guard(timeout)));
        }
        call.track(results);
        QueryResult last = results.isEmpty() ? new QueryResult(List.of(), List.of(), "", false) : results.getLast();
        json.writeStartObject();
        json.writeNumberField("rows_affected", PandaJson.rowsAffected(last));
        json.writeNumberField("duration_ms", millisSince(start));
        json.writeStringField("command", last.command());
        json.writeNumberField("statements", results.size());
        json.writeEndObject();
        return 200;
    }

    private int transaction(Call call, JsonGenerator json) throws PandaError, IOException, NoAccess {
        Transaction request = PandaRequest.transaction(call.body());
        PgConnection connection = call.open(request.database());
        Duration timeout = request.timeout();
        PgConnection.Guard guard = call.guard(timeout);
        long start = System.nanoTime();
        connection.simpleQuery(request.begin() + "; SET LOCAL statement_timeout = " + timeout.toMillis(), 1,
                broker.config.maxResponseBytes(), guard);
        List<QueryResult> results = new ArrayList<>();
        try {
            for (Statement statement : request.statements()) {
                results.add(connection.execute(statement.sql(), statement.params(), broker.config.maxRows(),
                        broker.config.maxResponseBytes(), guard));
            }
            connection.simpleQuery("COMMIT", 1, broker.config.maxResponseBytes(), guard);
        } finally {
            call.track(results);
        }
        json.writeStartObject();
        json.writeFieldName("results");
        json.writeStartArray();
        for (int i = 0; i < results.size(); i++) {
            QueryResult result = results.get(i);
            json.writeStartObject();
            json.writeNumberField("index", i);
            if (result.fields().isEmpty()) {
                json.writeNumberField("rows_affected", PandaJson.rowsAffected(result));
                json.writeStringField("command", result.command());
            } else {
                PandaJson.writeRows(json, result);
            }
            json.writeEndObject();
        }
        json.writeEndArray();
        json.writeNumberField("duration_ms", millisSince(start));
        json.writeEndObject();
        return 200;
    }

    private int health(Call call, JsonGenerator json) throws IOException {
        // without valid credentials nothing is looked up or woken: the same answer for every id
        String postgres = "unchecked";
        if (call.login.isPresent()) {
            try {
                Duration timeout = Duration.ofSeconds(3);
                call.open(call.tenant().database()).execute("SELECT 1", List.of(), 1, 1 << 16, call.guard(timeout));
                postgres = "ok";
            } catch (NoAccess | PandaError | IOException | PgError | PalisadeException e) {
                postgres = "unavailable";
            }
        }
        boolean down = postgres.equals("unavailable");
        json.writeStartObject();
        json.writeStringField("status", down ? "degraded" : "ok");
        json.writeStringField("postgres", postgres);
        json.writeStringField("ts", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        json.writeEndObject();
        return down ? 503 : 200;
    }

    private int info(Call call, JsonGenerator json) throws PandaError, IOException, NoAccess {
        TenantCredentials tenant = call.tenant();
        PgConnection connection = call.open(tenant.database());
        QueryResult result = connection.execute("SELECT version(), current_setting('server_version_num'), "
                        + "pg_database_size(current_database()), (SELECT string_agg(name, ',' ORDER BY name) "
                        + "FROM pg_available_extensions WHERE installed_version IS NOT NULL)",
                List.of(), 1, 1 << 20, call.guard(PandaRequest.QUERY_TIMEOUT));
        byte[] row = result.rows().getFirst();
        json.writeStartObject();
        json.writeStringField("postgres_version", QueryResult.value(row, 0));
        json.writeArrayFieldStart("extensions");
        String extensions = QueryResult.value(row, 3);
        for (String extension : extensions == null ? new String[0] : extensions.split(",")) {
            json.writeString(extension);
        }
        json.writeEndArray();
        json.writeStringField("broker_version", brokerVersion());
        json.writeStringField("id", call.databaseId);
        // the names in the tenant's URL (a shared server knows the tenant by internal names)
        json.writeStringField("database", tenant.database());
        json.writeStringField("username", tenant.username());
        json.writeStringField("server_version", connection.parameters().getOrDefault("server_version", ""));
        json.writeNumberField("server_version_num", Integer.parseInt(QueryResult.value(row, 1)));
        json.writeNumberField("size_bytes", Long.parseLong(QueryResult.value(row, 2)));
        json.writeObjectFieldStart("limits");
        json.writeNumberField("max_rows", Math.min(PandaRequest.DEFAULT_MAX_ROWS, broker.config.maxRows()));
        json.writeNumberField("timeout_ms", PandaRequest.QUERY_TIMEOUT.toMillis());
        json.writeNumberField("transaction_timeout_ms", PandaRequest.TRANSACTION_TIMEOUT.toMillis());
        json.writeNumberField("max_timeout_ms", PandaRequest.MAX_TIMEOUT.toMillis());
        json.writeNumberField("max_sql_bytes", PandaRequest.MAX_SQL_BYTES);
        json.writeNumberField("max_statements", PandaRequest.MAX_STATEMENTS);
        json.writeNumberField("max_request_bytes", broker.config.maxRequestBytes());
        json.writeNumberField("max_response_bytes", broker.config.maxResponseBytes());
        json.writeEndObject();
        json.writeEndObject();
        return 200;
    }

    /** Sets the session's statement timeout when the request's differs from the one connections start with. */
    private void setTimeout(Call call, PgConnection connection, Duration timeout) throws IOException {
        if (!timeout.equals(broker.config.statementTimeout())) {
            connection.simpleQuery("SET statement_timeout = " + timeout.toMillis(), 1, 1 << 16, call.guard(timeout));
            call.sessionChanged = true;
        }
    }

    private static long millisSince(long startNanos) {
        return (System.nanoTime() - startNanos) / 1_000_000;
    }

    private static String brokerVersion() {
        String version = PandaHttp.class.getPackage().getImplementationVersion();
        return "palisade " + (version == null ? "dev" : version);
    }

    private void handle(Context ctx, String route, boolean hasBody, boolean authRequired, Work work) {
        Timer.Sample sample = broker.startTimer();
        try {
            if (!broker.requests.enter()) {
                send(ctx, tooManyRequests());
                return;
            }
            try {
                run(ctx, hasBody, authRequired, work);
            } finally {
                broker.requests.leave();
            }
        } finally {
            broker.stopTimer(sample, route, ctx.statusCode());
        }
    }

    private void run(Context ctx, boolean hasBody, boolean authRequired, Work work) {
        String databaseId = ctx.pathParam("id");
        Call call = null;
        boolean admitted = false;
        try {
            String token = bearer(ctx);
            Optional<TenantCredentials> login = token == null ? Optional.empty()
                    : broker.verifier.verify(databaseId, token);
            if (login.isEmpty() && authRequired) {
                throw new NoAccess();
            }
            if (login.isPresent()) {
                if (!broker.requests.enter(databaseId)) {
                    throw tooManyRequests();
                }
                admitted = true;
            }
            if (hasBody) {
                ctx.attribute(BODY, HttpSupport.readBody(ctx, broker.config.maxRequestBytes()));
            }
            call = new Call(ctx, databaseId, login);
            BoundedBuffer out = new BoundedBuffer(broker.config.maxResponseBytes());
            int status;
            try (JsonGenerator json = broker.json.getFactory().createGenerator(out)) {
                status = work.run(call, json);
            }
            ctx.status(status);
            ctx.contentType("application/json");
            ctx.result(out.toByteArray());
        } catch (NoAccess e) {
            ctx.header("WWW-Authenticate", "Bearer");
            send(ctx, PandaError.of(401, "unauthorized"));
        } catch (PandaError e) {
            send(ctx, e);
        } catch (TooLarge e) {
            send(ctx, PandaError.of(413, "request body is larger than " + broker.config.maxRequestBytes()
                    + " bytes"));
        } catch (ResponseTooLarge e) {
            send(ctx, responseTooLarge());
        } catch (Aborted e) {
            switch (e.reason()) {
                case RESPONSE_TOO_LARGE -> send(ctx, responseTooLarge());
                case TIMEOUT -> send(ctx, new PandaError(408, "query timed out",
                        Map.of("code", "57014", "hint", "increase timeout_ms")));
                case CLIENT_GONE -> ctx.status(499);
            }
        } catch (PgError e) {
            send(ctx, PandaError.sql(e));
        } catch (PalisadeException e) {
            send(ctx, PandaError.of(e.errorCode().httpStatus(), e.getMessage()));
        } catch (IOException e) {
            send(ctx, PandaError.of(503, "postgres unavailable: " + e.getMessage() + "; try again"));
        } finally {
            if (call != null) {
                call.close();
            }
            if (admitted) {
                broker.requests.leave(databaseId);
            }
        }
    }

    private static PandaError tooManyRequests() {
        return PandaError.of(429, "too many requests in flight; try again later");
    }

    private PandaError responseTooLarge() {
        return PandaError.of(507, "the response is larger than " + broker.config.maxResponseBytes()
                + " bytes; select fewer rows or columns (max_rows)");
    }

    private void send(Context ctx, PandaError error) {
        try {
            ctx.status(error.status);
            ctx.contentType("application/json");
            ctx.result(broker.json.writeValueAsBytes(error.body()));
        } catch (IOException e) {
            throw new IllegalStateException("cannot render an error body", e);
        }
    }

    private static String bearer(Context ctx) {
        String header = ctx.header("Authorization");
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return null;
        }
        String token = header.substring(7).trim();
        return token.isEmpty() ? null : token;
    }
}
