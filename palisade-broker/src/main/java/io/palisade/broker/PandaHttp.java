package io.palisade.broker;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.http.Context;
import io.micrometer.core.instrument.Timer;
import io.palisade.broker.ConnectionPool.Lease;
import io.palisade.broker.HttpSupport.BoundedBuffer;
import io.palisade.broker.HttpSupport.ResponseTooLarge;
import io.palisade.broker.HttpSupport.TooLarge;
import io.palisade.broker.SqlBroker.Access;
import io.palisade.broker.SqlBroker.NoAccess;
import io.palisade.broker.pg.Field;
import io.palisade.broker.pg.PgConnection;
import io.palisade.broker.pg.PgConnection.Aborted;
import io.palisade.broker.pg.PgError;
import io.palisade.broker.pg.QueryResult;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.TenantCredentials;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.BooleanSupplier;

/**
 * PandaStack-style broker routes under {@code /broker/{id}}: {@code POST v1/query}, {@code v1/exec},
 * {@code v1/transaction}, {@code GET v1/health}, {@code v1/info}, authenticated by the database's broker token.
 * Errors are {@code application/problem+json}. The JSON shapes are documented in {@code docs/broker.md}. Stateless
 * apart from the broker.
 */
final class PandaHttp {
    private static final String PROBLEM_BASE = "https://palisade.dev/problems/";
    private static final Duration GRACE = Duration.ofSeconds(1);
    /** JSON values (scalars, arrays, objects) accepted in one body, so its tree stays a small multiple of its size. */
    static final int MAX_JSON_VALUES = 100_000;
    private static final Map<String, String> ISOLATION_LEVELS = Map.of(
            "read_uncommitted", "READ UNCOMMITTED",
            "read_committed", "READ COMMITTED",
            "repeatable_read", "REPEATABLE READ",
            "serializable", "SERIALIZABLE");

    private final SqlBroker broker;

    PandaHttp(SqlBroker broker) {
        this.broker = broker;
    }

    /** A client mistake or refusal, rendered as problem+json. */
    static final class Problem extends Exception {
        final int status;
        final String slug;
        final String title;
        final Map<String, Object> extra;

        Problem(int status, String slug, String title, String detail, Map<String, Object> extra) {
            super(detail, null, false, false);
            this.status = status;
            this.slug = slug;
            this.title = title;
            this.extra = extra;
        }

        static Problem of(ErrorCode code, String title, String detail) {
            return new Problem(code.httpStatus(), code.slug(), title, detail, Map.of());
        }
    }

    record Statement(String sql, List<String> params) {}

    /** The request attribute holding the tenant's login (the names in its URL, whatever the server knows it by). */
    private static final String TENANT_LOGIN = "palisade.broker.login";

    @FunctionalInterface
    interface Work {
        void run(Context ctx, Lease lease, BooleanSupplier gone, BoundedBuffer out, JsonGenerator json)
                throws Problem, IOException;
    }

    void query(Context ctx) {
        handle(ctx, "query", true, (c, lease, gone, out, json) -> {
            Statement statement = statement(body(c));
            QueryResult result = lease.connection.execute(statement.sql(), statement.params(),
                    broker.config.maxRows(), broker.config.maxResponseBytes(), guard(gone));
            track(c, List.of(result));
            writeResult(json, result);
        });
    }

    void exec(Context ctx) {
        handle(ctx, "exec", true, (c, lease, gone, out, json) -> {
            Statement statement = statement(body(c));
            List<QueryResult> results;
            if (statement.params().isEmpty()) {
                // no parameters: the simple protocol, so a script of several statements runs as one request
                results = lease.connection.simpleQuery(statement.sql(), broker.config.maxRows(),
                        broker.config.maxResponseBytes(), guard(gone));
            } else {
                results = List.of(lease.connection.execute(statement.sql(), statement.params(),
                        broker.config.maxRows(), broker.config.maxResponseBytes(), guard(gone)));
            }
            track(c, results);
            QueryResult last = results.isEmpty() ? new QueryResult(List.of(), List.of(), "", false) : results.getLast();
            json.writeStartObject();
            json.writeStringField("command", last.command());
            writeRowCount(json, last);
            json.writeNumberField("statements", results.size());
            json.writeEndObject();
        });
    }

    void transaction(Context ctx) {
        handle(ctx, "transaction", true, (c, lease, gone, out, json) -> {
            JsonNode root = body(c);
            JsonNode list = root.get("statements");
            if (list == null || !list.isArray() || list.isEmpty()) {
                throw Problem.of(ErrorCode.INVALID_REQUEST, "Invalid request",
                        "body must have \"statements\": a non-empty array of {\"sql\": ..., \"params\": [...]}");
            }
            List<Statement> statements = new ArrayList<>();
            for (JsonNode item : list) {
                statements.add(statement(item));
            }
            String begin = begin(root);
            PgConnection connection = lease.connection;
            connection.simpleQuery(begin, 1, broker.config.maxResponseBytes(), guard(gone));
            List<QueryResult> results = new ArrayList<>();
            try {
                for (Statement statement : statements) {
                    results.add(connection.execute(statement.sql(), statement.params(), broker.config.maxRows(),
                            broker.config.maxResponseBytes(), guard(gone)));
                }
                connection.simpleQuery("COMMIT", 1, broker.config.maxResponseBytes(), guard(gone));
            } finally {
                track(c, results);
            }
            json.writeStartObject();
            json.writeFieldName("results");
            json.writeStartArray();
            for (QueryResult result : results) {
                writeResult(json, result);
            }
            json.writeEndArray();
            json.writeEndObject();
        });
    }

    void health(Context ctx) {
        handle(ctx, "health", false, (c, lease, gone, out, json) -> {
            long start = System.nanoTime();
            lease.connection.execute("SELECT 1", List.of(), 1, 1 << 16, guard(gone));
            json.writeStartObject();
            json.writeStringField("status", "ok");
            json.writeNumberField("latency_ms", (System.nanoTime() - start) / 1_000_000.0);
            json.writeEndObject();
        });
    }

    void info(Context ctx) {
        handle(ctx, "info", false, (c, lease, gone, out, json) -> {
            QueryResult result = lease.connection.execute(
                    "SELECT current_database(), current_user, current_setting('server_version_num'), "
                            + "pg_database_size(current_database())",
                    List.of(), 1, 1 << 16, guard(gone));
            byte[] row = result.rows().getFirst();
            json.writeStartObject();
            json.writeStringField("id", c.pathParam("id"));
            // the names in the tenant's URL (a shared server knows the tenant by internal names)
            TenantCredentials login = c.attribute(TENANT_LOGIN);
            json.writeStringField("database", login.database());
            json.writeStringField("username", login.username());
            json.writeStringField("server_version", lease.connection.parameters().getOrDefault("server_version", ""));
            json.writeNumberField("server_version_num", Integer.parseInt(QueryResult.value(row, 2)));
            json.writeNumberField("size_bytes", Long.parseLong(QueryResult.value(row, 3)));
            json.writeObjectFieldStart("limits");
            json.writeNumberField("max_rows", broker.config.maxRows());
            json.writeNumberField("max_request_bytes", broker.config.maxRequestBytes());
            json.writeNumberField("max_response_bytes", broker.config.maxResponseBytes());
            json.writeNumberField("statement_timeout_ms", broker.config.statementTimeout().toMillis());
            json.writeEndObject();
            json.writeEndObject();
        });
    }

    private void handle(Context ctx, String route, boolean hasBody, Work work) {
        Timer.Sample sample = broker.startTimer();
        try {
            if (!broker.requests.enter()) {
                problem(ctx, tooManyRequests());
                return;
            }
            try {
                run(ctx, hasBody, work);
            } finally {
                broker.requests.leave();
            }
        } finally {
            broker.stopTimer(sample, route, ctx.statusCode());
        }
    }

    private void run(Context ctx, boolean hasBody, Work work) {
        String databaseId = ctx.pathParam("id");
        Lease lease = null;
        boolean admitted = false;
        try {
            String token = bearer(ctx);
            Optional<TenantCredentials> credentials = token == null ? Optional.empty()
                    : broker.verifier.verify(databaseId, token);
            if (credentials.isEmpty()) {
                throw new NoAccess();
            }
            if (!broker.requests.enter(databaseId)) {
                throw tooManyRequests();
            }
            admitted = true;
            if (hasBody) {
                ctx.attribute("palisade.broker.body",
                        HttpSupport.readBody(ctx, broker.config.maxRequestBytes()));
            }
            TenantCredentials login = credentials.get();
            lease = broker.login(new Access(databaseId, login.username(), login.database(), login.password()));
            ctx.attribute(TENANT_LOGIN, login);
            BoundedBuffer out = new BoundedBuffer(broker.config.maxResponseBytes());
            try (JsonGenerator json = broker.json.getFactory().createGenerator(out)) {
                work.run(ctx, lease, HttpSupport.clientGone(ctx), out, json);
            }
            ctx.status(200);
            ctx.contentType("application/json");
            ctx.result(out.toByteArray());
        } catch (NoAccess e) {
            ctx.header("WWW-Authenticate", "Bearer");
            problem(ctx, Problem.of(ErrorCode.UNAUTHENTICATED, "Unauthenticated",
                    "missing or invalid broker token for this database; send 'Authorization: Bearer <broker_token>' "
                            + "with the broker_token returned when the database was created"));
        } catch (Problem e) {
            problem(ctx, e);
        } catch (TooLarge e) {
            problem(ctx, Problem.of(ErrorCode.PAYLOAD_TOO_LARGE, "Payload too large",
                    "request body is larger than " + broker.config.maxRequestBytes() + " bytes"));
        } catch (ResponseTooLarge e) {
            problem(ctx, responseTooLarge());
        } catch (Aborted e) {
            switch (e.reason()) {
                case RESPONSE_TOO_LARGE -> problem(ctx, responseTooLarge());
                case TIMEOUT -> problem(ctx, Problem.of(ErrorCode.TIMEOUT, "Statement timeout",
                        "the statement ran longer than " + broker.config.statementTimeout().toMillis() + " ms"));
                case CLIENT_GONE -> ctx.status(499);
            }
        } catch (PgError e) {
            problem(ctx, sqlProblem(e));
        } catch (PalisadeException e) {
            problem(ctx, Problem.of(e.errorCode(), title(e.errorCode()), e.getMessage()));
        } catch (IOException e) {
            problem(ctx, Problem.of(ErrorCode.NOT_READY, "Database unavailable",
                    "could not talk to the database: " + e.getMessage() + "; try again"));
        } finally {
            if (lease != null) {
                Boolean changed = ctx.attribute("palisade.broker.session-changed");
                broker.giveBack(lease, changed != null && changed);
            }
            if (admitted) {
                broker.requests.leave(databaseId);
            }
        }
    }

    private static Problem tooManyRequests() {
        return new Problem(429, "too-many-requests", "Too many requests",
                "too many SQL-over-HTTP requests in flight; try again later", Map.of());
    }

    private Problem responseTooLarge() {
        return new Problem(507, "response-too-large", "Response too large", "the response is larger than "
                + broker.config.maxResponseBytes() + " bytes; select fewer rows or columns", Map.of());
    }

    private static Problem sqlProblem(PgError e) {
        Map<String, Object> extra = new LinkedHashMap<>();
        extra.put("sqlstate", e.sqlState());
        for (var field : List.of(Map.entry('D', "sql_detail"), Map.entry('H', "hint"), Map.entry('P', "position"),
                Map.entry('W', "where"), Map.entry('s', "schema"), Map.entry('t', "table"), Map.entry('c', "column"),
                Map.entry('n', "constraint"))) {
            String value = e.field(field.getKey());
            if (value != null) {
                extra.put(field.getValue(), field.getKey() == 'P' ? (Object) Integer.parseInt(value) : value);
            }
        }
        if (e.sqlState().equals("57014")) {
            return new Problem(504, ErrorCode.TIMEOUT.slug(), "Statement cancelled", e.getMessage(), extra);
        }
        return new Problem(400, "sql-error", "SQL error", e.getMessage(), extra);
    }

    private static String title(ErrorCode code) {
        String words = code.slug().replace('-', ' ');
        return Character.toUpperCase(words.charAt(0)) + words.substring(1);
    }

    private void problem(Context ctx, Problem problem) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("type", PROBLEM_BASE + problem.slug);
        body.put("title", problem.title);
        body.put("status", problem.status);
        body.put("detail", problem.getMessage());
        body.put("code", problem.slug);
        body.putAll(problem.extra);
        try {
            ctx.status(problem.status);
            ctx.contentType("application/problem+json");
            ctx.result(broker.json.writeValueAsBytes(body));
        } catch (IOException e) {
            throw new IllegalStateException("cannot render a problem body", e);
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

    private JsonNode body(Context ctx) throws Problem {
        byte[] body = ctx.attribute("palisade.broker.body");
        if (!HttpSupport.hasAtMostValues(body, broker.json, MAX_JSON_VALUES)) {
            throw Problem.of(ErrorCode.INVALID_REQUEST, "Invalid request", "body has more than " + MAX_JSON_VALUES
                    + " JSON values; send fewer statements or parameters per request");
        }
        try {
            JsonNode root = broker.json.readTree(body);
            if (root == null || !root.isObject()) {
                throw Problem.of(ErrorCode.INVALID_REQUEST, "Invalid request", "body must be a JSON object");
            }
            return root;
        } catch (IOException e) {
            throw Problem.of(ErrorCode.INVALID_REQUEST, "Invalid request", "body is not valid JSON: "
                    + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    private static Statement statement(JsonNode node) throws Problem {
        JsonNode sql = node == null ? null : node.get("sql");
        if (sql == null || !sql.isTextual() || sql.textValue().isBlank()) {
            throw Problem.of(ErrorCode.INVALID_REQUEST, "Invalid request",
                    "each statement needs \"sql\": a non-empty string (and optional \"params\": [...])");
        }
        List<String> params = new ArrayList<>();
        JsonNode list = node.get("params");
        if (list != null && !list.isNull()) {
            if (!list.isArray()) {
                throw Problem.of(ErrorCode.INVALID_REQUEST, "Invalid request", "\"params\" must be an array");
            }
            list.forEach(param -> params.add(JsonValues.param(param)));
        }
        return new Statement(sql.textValue(), params);
    }

    private static String begin(JsonNode root) throws Problem {
        StringBuilder begin = new StringBuilder("BEGIN");
        JsonNode isolation = root.get("isolation_level");
        if (isolation != null && !isolation.isNull()) {
            String level = isolation.isTextual()
                    ? ISOLATION_LEVELS.get(isolation.textValue().toLowerCase(Locale.ROOT).replace(' ', '_'))
                    : null;
            if (level == null) {
                throw Problem.of(ErrorCode.INVALID_REQUEST, "Invalid request", "\"isolation_level\" must be one of "
                        + "read_uncommitted, read_committed, repeatable_read, serializable");
            }
            begin.append(" ISOLATION LEVEL ").append(level);
        }
        JsonNode readOnly = root.get("read_only");
        if (readOnly != null && readOnly.asBoolean(false)) {
            begin.append(" READ ONLY");
        }
        return begin.toString();
    }

    private static void track(Context ctx, List<QueryResult> results) {
        if (SqlBroker.changesSession(results)) {
            ctx.attribute("palisade.broker.session-changed", true);
        }
    }

    private PgConnection.Guard guard(BooleanSupplier gone) {
        return new PgConnection.Guard(System.nanoTime() + broker.config.statementTimeout().plus(GRACE).toNanos(),
                gone);
    }

    static void writeResult(JsonGenerator json, QueryResult result) throws IOException {
        List<Field> fields = result.fields();
        json.writeStartObject();
        json.writeFieldName("columns");
        json.writeStartArray();
        for (Field field : fields) {
            json.writeStartObject();
            json.writeStringField("name", field.name());
            json.writeStringField("type", JsonValues.typeName(field.typeOid()));
            json.writeNumberField("type_oid", field.typeOid());
            json.writeEndObject();
        }
        json.writeEndArray();
        json.writeFieldName("rows");
        json.writeStartArray();
        IOException[] failure = new IOException[1];
        for (byte[] row : result.rows()) {
            json.writeStartArray();
            QueryResult.forEachValue(row, (column, bytes, offset, length) -> {
                try {
                    JsonValues.write(json, fields.get(column).typeOid(), bytes, offset, length, false);
                } catch (IOException e) {
                    failure[0] = e;
                }
            });
            if (failure[0] != null) {
                throw failure[0];
            }
            json.writeEndArray();
        }
        json.writeEndArray();
        writeRowCount(json, result);
        json.writeStringField("command", result.command());
        json.writeBooleanField("truncated", result.truncated());
        json.writeEndObject();
    }

    private static void writeRowCount(JsonGenerator json, QueryResult result) throws IOException {
        Long count = result.rowCount();
        if (count == null) {
            json.writeNullField("row_count");
        } else {
            json.writeNumberField("row_count", result.truncated() ? result.rows().size() : count);
        }
    }
}
