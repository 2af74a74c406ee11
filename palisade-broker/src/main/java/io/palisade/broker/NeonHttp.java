package io.palisade.broker;

import com.fasterxml.jackson.core.JsonGenerator;
import io.javalin.http.Context;
import io.micrometer.core.instrument.Timer;
import io.palisade.broker.ConnectionPool.Lease;
import io.palisade.broker.HttpSupport.BoundedBuffer;
import io.palisade.broker.HttpSupport.ResponseTooLarge;
import io.palisade.broker.HttpSupport.TooLarge;
import io.palisade.broker.NeonRequest.Query;
import io.palisade.broker.SqlBroker.Access;
import io.palisade.broker.SqlBroker.NoAccess;
import io.palisade.broker.pg.Field;
import io.palisade.broker.pg.PgConnection;
import io.palisade.broker.pg.PgConnection.Aborted;
import io.palisade.broker.pg.PgError;
import io.palisade.broker.pg.QueryResult;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.function.BooleanSupplier;

/**
 * Neon's SQL-over-HTTP endpoint, {@code POST /sql}, as {@code @neondatabase/serverless}'s {@code neon()} uses it:
 * database from the {@code Neon-Connection-String} header, one statement per query, batches as one transaction, raw
 * text and array modes, Postgres errors as HTTP 400 with every field. Stateless apart from the broker.
 */
final class NeonHttp {
    static final String ALLOW_HEADERS = "Authorization, Neon-Connection-String, Neon-Raw-Text-Output, "
            + "Neon-Array-Mode, Neon-Pool-Opt-In, Neon-Batch-Read-Only, Neon-Batch-Isolation-Level";
    private static final Map<String, String> ISOLATION_LEVELS = Map.of(
            "ReadUncommitted", "READ UNCOMMITTED",
            "ReadCommitted", "READ COMMITTED",
            "RepeatableRead", "REPEATABLE READ",
            "Serializable", "SERIALIZABLE");
    private static final Duration GRACE = Duration.ofSeconds(1);

    private final SqlBroker broker;

    NeonHttp(SqlBroker broker) {
        this.broker = broker;
    }

    void preflight(Context ctx) {
        ctx.status(200);
        ctx.header("Allow", "OPTIONS, POST");
        ctx.header("Access-Control-Allow-Origin", "*");
        ctx.header("Access-Control-Allow-Headers", ALLOW_HEADERS);
        ctx.header("Access-Control-Max-Age", "86400");
    }

    void notAllowed(Context ctx) {
        ctx.header("Access-Control-Allow-Origin", "*");
        error(ctx, 400, "SQL over HTTP takes POST requests (or a WebSocket upgrade at /v2)", null);
    }

    /** What a connection string names. */
    record ConnInfo(String databaseId, String user, String password, String database) {
        @Override
        public String toString() {
            return "ConnInfo[" + databaseId + ", user=" + user + ", database=" + database + "]";
        }
    }

    static final class BadRequest extends Exception {
        BadRequest(String message) {
            super(message, null, false, false);
        }
    }

    void handle(Context ctx) {
        Timer.Sample sample = broker.startTimer();
        try {
            ctx.header("Neon-Request-Id", UUID.randomUUID().toString());
            ctx.header("Access-Control-Allow-Origin", "*");
            if (!broker.requests.enter()) {
                tooManyRequests(ctx);
                return;
            }
            try {
                run(ctx);
            } finally {
                broker.requests.leave();
            }
        } finally {
            broker.stopTimer(sample, "sql", ctx.statusCode());
        }
    }

    /**
     * The login is checked (from the header, on the host) before the body is read; the body is then parsed as a stream
     * up to the request limit.
     */
    private void run(Context ctx) {
        boolean raw = "true".equals(ctx.header("Neon-Raw-Text-Output"));
        boolean arrayMode = "true".equals(ctx.header("Neon-Array-Mode"));
        ConnInfo info = null;
        Access access;
        try {
            info = parseConnectionString(ctx.header("Neon-Connection-String"));
            if (ctx.req().getContentLengthLong() > broker.config.maxRequestBytes()) {
                throw new TooLarge();
            }
            access = broker.authenticate(info.databaseId(), info.user(), info.database(), info.password());
        } catch (BadRequest e) {
            refuseUnread(ctx, 400, e.getMessage());
            return;
        } catch (TooLarge e) {
            refuseUnread(ctx, 413, "request is too large (max is " + broker.config.maxRequestBytes() + " bytes)");
            return;
        } catch (NoAccess e) {
            refuseUnread(ctx, 400, "password authentication failed for user '" + info.user() + "'");
            return;
        } catch (PalisadeException e) {
            refuseUnread(ctx, e.errorCode().httpStatus() == 503 ? 503 : 500, e.getMessage());
            return;
        }
        if (!broker.requests.enter(access.databaseId())) {
            ctx.header("Connection", "close");
            tooManyRequests(ctx);
            return;
        }
        try {
            NeonRequest request;
            String begin = null;
            try {
                request = NeonRequest.read(ctx.req().getInputStream(), broker.config.maxRequestBytes(), broker.json);
                if (request.batch()) {
                    begin = beginStatement(ctx);
                }
            } catch (BadRequest e) {
                error(ctx, 400, e.getMessage(), null);
                return;
            } catch (TooLarge e) {
                refuseUnread(ctx, 413, "request is too large (max is " + broker.config.maxRequestBytes() + " bytes)");
                return;
            } catch (IOException e) {
                error(ctx, 400, "could not read the HTTP request body: " + e.getMessage(), null);
                return;
            }
            execute(ctx, access, request.queries(), request.batch(), begin, raw, arrayMode);
        } finally {
            broker.requests.leave(access.databaseId());
        }
    }

    /** Answers without reading (the rest of) the body: the connection is closed after the answer. */
    private void refuseUnread(Context ctx, int status, String message) {
        ctx.header("Connection", "close");
        error(ctx, status, message, null);
    }

    private void tooManyRequests(Context ctx) {
        ctx.header("Retry-After", "1");
        error(ctx, 429, "too many SQL-over-HTTP requests in flight; try again later", null, "53300");
    }

    private void execute(Context ctx, Access access, List<Query> queries, boolean batch, String begin, boolean raw,
            boolean arrayMode) {
        BooleanSupplier gone = HttpSupport.clientGone(ctx);
        for (int attempt = 0; ; attempt++) {
            Lease lease;
            try {
                lease = broker.login(access);
            } catch (NoAccess e) {
                error(ctx, 400, "password authentication failed for user '" + access.user() + "'", null);
                return;
            } catch (PgError e) {
                error(ctx, 400, e.getMessage(), e);
                return;
            } catch (PalisadeException e) {
                error(ctx, e.errorCode().httpStatus() == 503 ? 503 : 500, e.getMessage(), null);
                return;
            } catch (IOException e) {
                error(ctx, 500, "could not connect to the database: " + e.getMessage(), null);
                return;
            }
            List<QueryResult> results = new ArrayList<>();
            boolean retry = false;
            try {
                PgConnection connection = lease.connection;
                int maxRows = broker.config.maxRows();
                long maxBytes = broker.config.maxResponseBytes();
                if (batch) {
                    connection.simpleQuery(begin, 1, maxBytes, guard(gone));
                }
                for (Query query : queries) {
                    QueryResult result = connection.execute(query.sql(), query.params(), maxRows, maxBytes,
                            guard(gone));
                    if (result.truncated()) {
                        if (batch) {
                            connection.simpleQuery("ROLLBACK", 1, maxBytes, guard(gone));
                        }
                        error(ctx, 507, "response is too large (max is " + maxRows + " rows)", null);
                        return;
                    }
                    results.add(result);
                }
                if (batch) {
                    connection.simpleQuery("COMMIT", 1, maxBytes, guard(gone));
                }
                byte[] json = render(results, queries, batch, raw, arrayMode);
                if (batch) {
                    echoBatchHeaders(ctx);
                }
                ctx.status(200);
                ctx.contentType("application/json");
                ctx.result(json);
            } catch (PgError e) {
                error(ctx, 400, e.getMessage(), e);
            } catch (Aborted e) {
                switch (e.reason()) {
                    case CLIENT_GONE -> error(ctx, 400, "client disconnected; the query was cancelled", null, "08P01");
                    case RESPONSE_TOO_LARGE -> error(ctx, 507, "response is too large (max is "
                            + broker.config.maxResponseBytes() + " bytes)", null);
                    case TIMEOUT -> error(ctx, 400, "canceling statement due to statement timeout", null, "57014");
                }
            } catch (ResponseTooLarge e) {
                error(ctx, 507, "response is too large (max is " + broker.config.maxResponseBytes() + " bytes)",
                        null);
            } catch (IOException e) {
                if (lease.reused && results.isEmpty() && attempt == 0) {
                    retry = true; // a pooled connection went stale (server restarted): try once on a fresh one
                } else {
                    error(ctx, 500, "lost the connection to the database: " + e.getMessage(), null);
                }
            } finally {
                broker.giveBack(lease, SqlBroker.changesSession(results));
            }
            if (!retry) {
                return;
            }
        }
    }

    private PgConnection.Guard guard(BooleanSupplier gone) {
        return new PgConnection.Guard(System.nanoTime() + broker.config.statementTimeout().plus(GRACE).toNanos(),
                gone);
    }

    private byte[] render(List<QueryResult> results, List<Query> queries, boolean batch, boolean raw,
            boolean arrayMode) throws IOException {
        BoundedBuffer out = new BoundedBuffer(broker.config.maxResponseBytes());
        try (JsonGenerator json = broker.json.getFactory().createGenerator(out)) {
            if (batch) {
                json.writeStartObject();
                json.writeFieldName("results");
                json.writeStartArray();
            }
            for (int i = 0; i < results.size(); i++) {
                Boolean override = queries.get(i).arrayMode();
                writeResult(json, results.get(i), raw, override != null ? override : arrayMode);
            }
            if (batch) {
                json.writeEndArray();
                json.writeEndObject();
            }
        }
        return out.toByteArray();
    }

    static void writeResult(JsonGenerator json, QueryResult result, boolean raw, boolean arrayMode)
            throws IOException {
        List<Field> fields = result.fields();
        json.writeStartObject();
        json.writeFieldName("fields");
        json.writeStartArray();
        for (Field field : fields) {
            json.writeStartObject();
            json.writeStringField("name", field.name());
            json.writeNumberField("dataTypeID", field.typeOid());
            json.writeNumberField("tableID", field.tableOid());
            json.writeNumberField("columnID", field.columnNumber());
            json.writeNumberField("dataTypeSize", field.typeSize());
            json.writeNumberField("dataTypeModifier", field.typeModifier());
            json.writeStringField("format", "text");
            json.writeEndObject();
        }
        json.writeEndArray();
        json.writeFieldName("rows");
        json.writeStartArray();
        IOException[] failure = new IOException[1];
        for (byte[] row : result.rows()) {
            if (arrayMode) {
                json.writeStartArray();
            } else {
                json.writeStartObject();
            }
            QueryResult.forEachValue(row, (column, bytes, offset, length) -> {
                try {
                    Field field = fields.get(column);
                    if (!arrayMode) {
                        json.writeFieldName(field.name());
                    }
                    JsonValues.write(json, field.typeOid(), bytes, offset, length, raw);
                } catch (IOException e) {
                    failure[0] = e;
                }
            });
            if (failure[0] != null) {
                throw failure[0];
            }
            if (arrayMode) {
                json.writeEndArray();
            } else {
                json.writeEndObject();
            }
        }
        json.writeEndArray();
        json.writeStringField("command", result.command());
        Long rowCount = result.rowCount();
        if (rowCount == null) {
            json.writeNullField("rowCount");
        } else {
            json.writeNumberField("rowCount", rowCount);
        }
        json.writeBooleanField("rowAsArray", arrayMode);
        json.writeEndObject();
    }

    private static void echoBatchHeaders(Context ctx) {
        for (String name : List.of("Neon-Batch-Isolation-Level", "Neon-Batch-Read-Only", "Neon-Batch-Deferrable")) {
            String value = ctx.header(name);
            if (value != null) {
                ctx.header(name, value);
            }
        }
    }

    private static String beginStatement(Context ctx) throws BadRequest {
        StringBuilder begin = new StringBuilder("BEGIN");
        String isolation = ctx.header("Neon-Batch-Isolation-Level");
        if (isolation != null) {
            String level = ISOLATION_LEVELS.get(isolation);
            if (level == null) {
                throw new BadRequest("invalid isolation level");
            }
            begin.append(" ISOLATION LEVEL ").append(level);
        }
        if ("true".equals(ctx.header("Neon-Batch-Read-Only"))) {
            begin.append(" READ ONLY");
        }
        if ("true".equals(ctx.header("Neon-Batch-Deferrable"))) {
            begin.append(" DEFERRABLE");
        }
        return begin.toString();
    }

    /**
     * {@code postgres[ql]://user:password@<database-id>.<rest>[:port]/<dbname>[?params]}. The first host label is the
     * database id; the database name defaults to the user name.
     */
    static ConnInfo parseConnectionString(String value) throws BadRequest {
        if (value == null || value.isBlank()) {
            throw new BadRequest("missing header: neon-connection-string");
        }
        String rest;
        if (value.startsWith("postgres://")) {
            rest = value.substring("postgres://".length());
        } else if (value.startsWith("postgresql://")) {
            rest = value.substring("postgresql://".length());
        } else {
            throw new BadRequest("invalid header: neon-connection-string");
        }
        int authorityEnd = rest.length();
        for (int i = 0; i < rest.length(); i++) {
            char c = rest.charAt(i);
            if (c == '/' || c == '?') {
                authorityEnd = i;
                break;
            }
        }
        String authority = rest.substring(0, authorityEnd);
        String path = rest.substring(authorityEnd);
        int at = authority.lastIndexOf('@');
        if (at < 0) {
            throw new BadRequest("missing username");
        }
        String userInfo = authority.substring(0, at);
        String hostPort = authority.substring(at + 1);
        int colon = userInfo.indexOf(':');
        String user = decode(colon < 0 ? userInfo : userInfo.substring(0, colon));
        if (user.isEmpty()) {
            throw new BadRequest("missing username");
        }
        if (colon < 0) {
            throw new BadRequest("missing password");
        }
        String password = decode(userInfo.substring(colon + 1));
        String host;
        if (hostPort.startsWith("[")) {
            int close = hostPort.indexOf(']');
            host = close < 0 ? hostPort : hostPort.substring(1, close);
        } else {
            int portColon = hostPort.lastIndexOf(':');
            host = portColon < 0 ? hostPort : hostPort.substring(0, portColon);
        }
        String databaseId = firstLabel(host);
        if (databaseId == null) {
            throw new BadRequest("invalid header: neon-connection-string (the host's first label must be the "
                    + "database id, e.g. postgres://user:password@<database-id>.db.example.com/dbname)");
        }
        String database = user;
        if (path.startsWith("/")) {
            int end = path.indexOf('?');
            String segment = path.substring(1, end < 0 ? path.length() : end);
            int slash = segment.indexOf('/');
            if (slash >= 0) {
                segment = segment.substring(0, slash);
            }
            if (!segment.isEmpty()) {
                database = decode(segment);
            }
        }
        int query = path.indexOf('?');
        if (query >= 0) {
            StartupParameters.checkUrlQuery(path.substring(query + 1), NeonHttp::decodeUnchecked);
        }
        if (user.indexOf('\0') >= 0 || password.indexOf('\0') >= 0 || database.indexOf('\0') >= 0) {
            throw new BadRequest("invalid header: neon-connection-string (NUL character in the user, password or "
                    + "database name)");
        }
        return new ConnInfo(databaseId, user, password, database);
    }

    private static String decodeUnchecked(String value) {
        try {
            return decode(value);
        } catch (BadRequest e) {
            return "\0";
        }
    }

    /** The first DNS label of a host, lower-cased, if it can be a database id. */
    static String firstLabel(String host) {
        if (host == null || host.isEmpty()) {
            return null;
        }
        int dot = host.indexOf('.');
        String label = (dot < 0 ? host : host.substring(0, dot)).toLowerCase(Locale.ROOT);
        if (label.isEmpty() || label.equals("api") || label.equals("apiauth") || label.length() > 63
                || !label.matches("[a-z0-9]([a-z0-9-]*[a-z0-9])?")) {
            return null;
        }
        return label;
    }

    private static String decode(String value) throws BadRequest {
        try {
            return URLDecoder.decode(value.replace("+", "%2B"), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new BadRequest("invalid header: neon-connection-string (bad percent-encoding)");
        }
    }

    private void error(Context ctx, int status, String message, PgError pg) {
        error(ctx, status, message, pg, "");
    }

    /** Neon's error body: every field present, absent ones null; non-Postgres errors have empty code and severity. */
    private void error(Context ctx, int status, String message, PgError pg, String code) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("message", message);
        body.put("code", pg != null ? pg.sqlState() : code);
        body.put("detail", pg != null ? pg.field('D') : null);
        body.put("hint", pg != null ? pg.field('H') : null);
        body.put("position", pg != null ? pg.field('P') : null);
        body.put("internalPosition", pg != null ? pg.field('p') : null);
        body.put("internalQuery", pg != null ? pg.field('q') : null);
        body.put("severity", pg != null ? pg.severity() : code.isEmpty() ? "" : "ERROR");
        body.put("where", pg != null ? pg.field('W') : null);
        body.put("table", pg != null ? pg.field('t') : null);
        body.put("column", pg != null ? pg.field('c') : null);
        body.put("schema", pg != null ? pg.field('s') : null);
        body.put("dataType", pg != null ? pg.field('d') : null);
        body.put("constraint", pg != null ? pg.field('n') : null);
        body.put("file", pg != null ? pg.field('F') : null);
        body.put("line", pg != null ? pg.field('L') : null);
        body.put("routine", pg != null ? pg.field('R') : null);
        try {
            ctx.status(status);
            ctx.contentType("application/json");
            ctx.result(broker.json.writeValueAsBytes(body));
        } catch (IOException e) {
            throw new IllegalStateException("cannot render an error body", e);
        }
    }
}
