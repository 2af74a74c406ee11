package io.palisade.broker;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Reads and checks the JSON bodies of PandaStack's broker routes, refusing with PandaStack's own texts
 * ({@code database required}, {@code sql required}, {@code too many statements}, ...) and defaults (10,000 rows, 30 s,
 * 60 s for a transaction, 1 MiB of SQL, 1,000 parameters, 100 statements). Stateless.
 */
final class PandaRequest {
    static final int DEFAULT_MAX_ROWS = 10_000;
    static final Duration QUERY_TIMEOUT = Duration.ofSeconds(30);
    static final Duration TRANSACTION_TIMEOUT = Duration.ofSeconds(60);
    /** The longest {@code timeout_ms} honoured; a longer one is cut to this (PandaStack sets no ceiling). */
    static final Duration MAX_TIMEOUT = Duration.ofMinutes(5);
    static final int MAX_SQL_BYTES = 1 << 20;
    static final int MAX_PARAMS = 1_000;
    static final int MAX_STATEMENTS = 100;
    static final int MAX_NAME_LENGTH = 63;
    /** JSON values (scalars, arrays, objects) accepted in one body, so its tree stays a small multiple of its size. */
    static final int MAX_JSON_VALUES = 100_000;
    private static final Map<String, String> ISOLATION_LEVELS = Map.of(
            "read_uncommitted", "READ UNCOMMITTED",
            "read_committed", "READ COMMITTED",
            "repeatable_read", "REPEATABLE READ",
            "serializable", "SERIALIZABLE");

    private PandaRequest() {}

    record Statement(String sql, List<String> params) {
        Statement {
            requireNonNull(sql, "sql is null");
            params = List.copyOf(params);
        }
    }

    /** {@code POST v1/query} and {@code v1/exec}: one statement. */
    record Single(String database, Statement statement, Duration timeout, int maxRows) {}

    /** {@code POST v1/transaction}: up to 100 statements, with palisade's optional isolation level and read-only. */
    record Transaction(String database, List<Statement> statements, Duration timeout, String begin) {}

    static Single single(JsonNode root, int configuredMaxRows) throws PandaError {
        String database = database(root);
        Statement statement = statement(root);
        int maxRows = Math.min(DEFAULT_MAX_ROWS, configuredMaxRows);
        JsonNode requested = root.get("max_rows");
        if (requested != null && !requested.isNull()) {
            if (!requested.canConvertToInt()) {
                throw PandaError.badRequest("invalid JSON: max_rows must be an integer");
            }
            if (requested.intValue() > 0 && requested.intValue() < maxRows) {
                maxRows = requested.intValue();
            }
        }
        return new Single(database, statement, timeout(root, QUERY_TIMEOUT), maxRows);
    }

    static Transaction transaction(JsonNode root) throws PandaError {
        String database = database(root);
        JsonNode list = root.get("statements");
        if (list == null || list.isNull() || (list.isArray() && list.isEmpty())) {
            throw PandaError.badRequest("no statements");
        }
        if (!list.isArray()) {
            throw PandaError.badRequest("invalid JSON: statements must be an array of {\"sql\", \"params\"}");
        }
        if (list.size() > MAX_STATEMENTS) {
            throw PandaError.badRequest("too many statements");
        }
        List<Statement> statements = new ArrayList<>();
        for (JsonNode item : list) {
            if (!item.isObject()) {
                throw PandaError.badRequest("invalid JSON: each statement must be an object {\"sql\", \"params\"}");
            }
            statements.add(statement(item));
        }
        return new Transaction(database, statements, timeout(root, TRANSACTION_TIMEOUT), begin(root));
    }

    /** The body as a JSON object, or 400 {@code invalid JSON: ...}. */
    static JsonNode object(byte[] body, ObjectMapper json) throws PandaError {
        if (!HttpSupport.hasAtMostValues(body, json, MAX_JSON_VALUES)) {
            throw PandaError.badRequest("invalid JSON: more than " + MAX_JSON_VALUES
                    + " values; send fewer statements or parameters per request");
        }
        try {
            JsonNode root = json.readTree(body);
            if (root == null || !root.isObject()) {
                throw PandaError.badRequest("invalid JSON: the body must be a JSON object");
            }
            return root;
        } catch (IOException e) {
            throw PandaError.badRequest("invalid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    /** The {@code database} field: required, then checked as a name. */
    static String database(JsonNode root) throws PandaError {
        String name = text(root, "database");
        if (name.isEmpty()) {
            throw PandaError.badRequest("database required");
        }
        checkName(name);
        return name;
    }

    /** A database name as PandaStack accepts it: at most 63 characters of {@code A-Z a-z 0-9 _ -}. */
    static void checkName(String name) throws PandaError {
        if (name.length() > MAX_NAME_LENGTH) {
            throw PandaError.badRequest("database name too long");
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            boolean allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
                    || c == '-';
            if (!allowed) {
                throw PandaError.badRequest("invalid character in database name: '" + printable(name, i) + "'");
            }
        }
    }

    /** A string field, "" when absent or null; 400 when it is not a string. */
    static String text(JsonNode root, String field) throws PandaError {
        JsonNode node = root.get(field);
        if (node == null || node.isNull()) {
            return "";
        }
        if (!node.isTextual()) {
            throw PandaError.badRequest("invalid JSON: " + field + " must be a string");
        }
        return node.textValue();
    }

    private static Statement statement(JsonNode node) throws PandaError {
        String sql = text(node, "sql");
        if (sql.isEmpty()) {
            throw PandaError.badRequest("sql required");
        }
        if (sql.length() > MAX_SQL_BYTES / 3 && sql.getBytes(StandardCharsets.UTF_8).length > MAX_SQL_BYTES) {
            throw PandaError.badRequest("sql too large (max " + MAX_SQL_BYTES + " bytes)");
        }
        List<String> params = new ArrayList<>();
        JsonNode list = node.get("params");
        if (list != null && !list.isNull()) {
            if (!list.isArray()) {
                throw PandaError.badRequest("invalid JSON: params must be an array");
            }
            if (list.size() > MAX_PARAMS) {
                throw PandaError.badRequest("too many params");
            }
            list.forEach(param -> params.add(JsonValues.param(param)));
        }
        return new Statement(sql, params);
    }

    /** {@code timeout_ms} when positive (cut to {@link #MAX_TIMEOUT}), else the route's default. */
    private static Duration timeout(JsonNode root, Duration fallback) throws PandaError {
        JsonNode node = root.get("timeout_ms");
        if (node == null || node.isNull()) {
            return fallback;
        }
        if (!node.isIntegralNumber()) {
            throw PandaError.badRequest("invalid JSON: timeout_ms must be an integer");
        }
        long millis = node.longValue();
        if (millis <= 0) {
            return fallback;
        }
        return Duration.ofMillis(Math.min(millis, MAX_TIMEOUT.toMillis()));
    }

    private static String begin(JsonNode root) throws PandaError {
        StringBuilder begin = new StringBuilder("BEGIN");
        JsonNode isolation = root.get("isolation_level");
        if (isolation != null && !isolation.isNull()) {
            String level = isolation.isTextual()
                    ? ISOLATION_LEVELS.get(isolation.textValue().toLowerCase(Locale.ROOT).replace(' ', '_'))
                    : null;
            if (level == null) {
                throw PandaError.badRequest("isolation_level must be one of read_uncommitted, read_committed, "
                        + "repeatable_read, serializable");
            }
            begin.append(" ISOLATION LEVEL ").append(level);
        }
        JsonNode readOnly = root.get("read_only");
        if (readOnly != null && readOnly.asBoolean(false)) {
            begin.append(" READ ONLY");
        }
        return begin.toString();
    }

    private static String printable(String name, int at) {
        int codePoint = name.codePointAt(at);
        return codePoint < 0x20 || codePoint == 0x7f ? String.format("\\x%02x", codePoint)
                : new String(Character.toChars(codePoint));
    }
}
