package io.palisade.broker;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.broker.HttpSupport.TooLarge;
import io.palisade.broker.NeonHttp.BadRequest;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;

/**
 * The body of a Neon {@code POST /sql}, read with a streaming parser straight from the request: {@code {"query",
 * "params", "arrayMode"}} or {@code {"queries": [...]}}. Only the strings that are sent on to PostgreSQL are kept (no
 * JSON tree of the whole body; an array parameter becomes one array literal), reading stops at the byte limit, and at
 * most {@value #MAX_KEPT_VALUES} statements and parameters are kept ({@value #MAX_PARAMS} per statement, PostgreSQL's
 * own limit), so a body of many tiny values cannot amplify into a large heap. Immutable.
 */
record NeonRequest(List<Query> queries, boolean batch) {
    NeonRequest {
        queries = List.copyOf(requireNonNull(queries, "queries is null"));
    }

    /** One statement: its SQL, its parameters as PostgreSQL text (null = NULL) and an optional array-mode override. */
    record Query(String sql, List<String> params, Boolean arrayMode) {
        Query {
            requireNonNull(sql, "sql is null");
            requireNonNull(params, "params is null");
        }
    }

    private static final String PREFIX = "could not parse the HTTP request body: ";
    /** Statements plus parameters kept from one body. */
    static final int MAX_KEPT_VALUES = 100_000;
    /** Parameters of one statement: what the protocol's Bind message can carry. */
    static final int MAX_PARAMS = 65_535;

    /** Parses at most {@code maxBytes} from {@code in}; throws {@link TooLarge} past them. */
    static NeonRequest read(InputStream in, long maxBytes, ObjectMapper mapper) throws BadRequest, IOException {
        try (JsonParser parser = mapper.getFactory().createParser(new Limited(in, maxBytes))) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                throw new BadRequest(PREFIX + "expected a JSON object");
            }
            Fields root = fields(parser, mapper, true, new int[1]);
            if (root.batch) {
                return new NeonRequest(root.queries, true);
            }
            return new NeonRequest(List.of(root.toQuery()), false);
        } catch (JacksonException e) {
            throw new BadRequest(PREFIX + e.getOriginalMessage());
        }
    }

    /** The fields of one query object (or of the root, which may hold {@code queries}). */
    private static final class Fields {
        String sql;
        boolean sqlInvalid;
        List<String> params = new ArrayList<>();
        Boolean arrayMode;
        boolean batch;
        List<Query> queries = new ArrayList<>();

        Query toQuery() throws BadRequest {
            if (sql == null || sqlInvalid) {
                throw new BadRequest(PREFIX + "missing field `query`");
            }
            return new Query(sql, params, arrayMode);
        }
    }

    /** Reads an object's fields; the parser is on its START_OBJECT and ends on its END_OBJECT. */
    private static Fields fields(JsonParser parser, ObjectMapper mapper, boolean root, int[] kept)
            throws BadRequest, IOException {
        count(kept, 1);
        Fields fields = new Fields();
        while (parser.nextToken() == JsonToken.FIELD_NAME) {
            String name = parser.currentName();
            JsonToken value = parser.nextToken();
            switch (name) {
                case "query" -> {
                    if (value == JsonToken.VALUE_STRING) {
                        fields.sql = parser.getText();
                        fields.sqlInvalid = false;
                    } else {
                        fields.sqlInvalid = true;
                        parser.skipChildren();
                    }
                }
                case "params" -> fields.params = params(parser, mapper, kept);
                case "arrayMode" -> fields.arrayMode = value == JsonToken.VALUE_TRUE ? Boolean.TRUE
                        : value == JsonToken.VALUE_FALSE ? Boolean.FALSE : null;
                case "queries" -> {
                    if (!root) {
                        parser.skipChildren();
                        continue;
                    }
                    fields.batch = true;
                    if (value != JsonToken.START_ARRAY) {
                        throw new BadRequest(PREFIX + "\"queries\" must be an array");
                    }
                    while (parser.nextToken() != JsonToken.END_ARRAY) {
                        if (parser.currentToken() != JsonToken.START_OBJECT) {
                            throw new BadRequest(PREFIX + "each query must be a JSON object");
                        }
                        fields.queries.add(fields(parser, mapper, false, kept).toQuery());
                    }
                }
                default -> parser.skipChildren();
            }
        }
        if (parser.currentToken() != JsonToken.END_OBJECT) {
            throw new BadRequest(PREFIX + "expected a JSON object");
        }
        return fields;
    }

    private static void count(int[] kept, int more) throws BadRequest {
        kept[0] += more;
        if (kept[0] > MAX_KEPT_VALUES) {
            throw new BadRequest(PREFIX + "more than " + MAX_KEPT_VALUES + " queries and parameters in one request");
        }
    }

    private static List<String> params(JsonParser parser, ObjectMapper mapper, int[] kept)
            throws BadRequest, IOException {
        List<String> params = new ArrayList<>();
        JsonToken token = parser.currentToken();
        if (token == JsonToken.VALUE_NULL) {
            return params;
        }
        if (token != JsonToken.START_ARRAY) {
            throw new BadRequest(PREFIX + "`params` must be an array");
        }
        while (parser.nextToken() != JsonToken.END_ARRAY) {
            if (params.size() == MAX_PARAMS) {
                throw new BadRequest(PREFIX + "more than " + MAX_PARAMS + " parameters in one query");
            }
            count(kept, 1);
            params.add(param(parser, mapper));
        }
        return params;
    }

    /** One parameter as PostgreSQL text, as {@link JsonValues#param} makes it, without a tree for arrays or objects. */
    private static String param(JsonParser parser, ObjectMapper mapper) throws IOException {
        return switch (parser.currentToken()) {
            case VALUE_NULL -> null;
            case VALUE_STRING -> parser.getText();
            case START_ARRAY -> {
                StringBuilder literal = new StringBuilder();
                appendArray(literal, parser, mapper);
                yield literal.toString();
            }
            case START_OBJECT -> {
                StringWriter text = new StringWriter();
                try (JsonGenerator out = mapper.getFactory().createGenerator(text)) {
                    int depth = 0;
                    do {
                        JsonToken token = parser.currentToken();
                        if (token == JsonToken.VALUE_NUMBER_FLOAT) {
                            out.copyCurrentEventExact(parser);
                        } else {
                            out.copyCurrentEvent(parser);
                        }
                        if (token.isStructStart()) {
                            depth++;
                        } else if (token.isStructEnd()) {
                            depth--;
                        }
                    } while (depth > 0 && parser.nextToken() != null);
                }
                yield text.toString();
            }
            default -> JsonValues.param(mapper.readTree(parser));
        };
    }

    /** An array literal; elements quoted, nested arrays recursive, null → NULL. The parser is on START_ARRAY. */
    private static void appendArray(StringBuilder literal, JsonParser parser, ObjectMapper mapper)
            throws IOException {
        literal.append('{');
        boolean first = true;
        while (parser.nextToken() != JsonToken.END_ARRAY) {
            if (!first) {
                literal.append(',');
            }
            first = false;
            JsonToken token = parser.currentToken();
            if (token == JsonToken.VALUE_NULL) {
                literal.append("NULL");
            } else if (token == JsonToken.START_ARRAY) {
                appendArray(literal, parser, mapper);
            } else {
                String text = param(parser, mapper);
                JsonValues.appendQuotedElement(literal, text);
            }
        }
        literal.append('}');
    }

    /** Counts bytes read and throws {@link TooLarge} past the limit. Not thread-safe. */
    private static final class Limited extends FilterInputStream {
        private final long max;
        private long count;

        Limited(InputStream in, long max) {
            super(in);
            this.max = max;
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) {
                count(1);
            }
            return b;
        }

        @Override
        public int read(byte[] buffer, int offset, int length) throws IOException {
            int n = super.read(buffer, offset, length);
            if (n > 0) {
                count(n);
            }
            return n;
        }

        private void count(int n) {
            count += n;
            if (count > max) {
                throw new TooLarge();
            }
        }
    }
}
