package io.palisade.server.openapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.InputFormat;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaValidatorsConfig;
import com.networknt.schema.SpecVersion;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * An OpenAPI 3.1 document used as a contract: which operations it documents, and whether a response (status, content
 * type, body) is one it documents for an operation, checked with a JSON Schema 2020-12 validator against the
 * document's own schemas (their {@code $ref}s resolve inside the document). Thread-safe after construction.
 */
final class OpenApiContract {
    private static final String BASE = "https://palisade.invalid/openapi.json";
    private static final ObjectMapper MAPPER = new ObjectMapper();
    static final Set<String> METHODS = Set.of("get", "put", "post", "delete", "options", "head", "patch", "trace");

    private final JsonNode document;
    private final JsonSchemaFactory schemas;
    private final SchemaValidatorsConfig config =
            SchemaValidatorsConfig.builder().formatAssertionsEnabled(true).build();

    private OpenApiContract(String json) {
        try {
            this.document = MAPPER.readTree(json);
        } catch (IOException e) {
            throw new AssertionError("the OpenAPI document is not JSON: " + e.getMessage(), e);
        }
        this.schemas = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V202012,
                builder -> builder.schemaLoaders(loaders -> loaders.schemas(Map.of(BASE, json))));
    }

    static OpenApiContract parse(String json) {
        return new OpenApiContract(json);
    }

    JsonNode document() {
        return document;
    }

    /** Every documented operation as {@code "GET /v1/databases/{id}"}. */
    Set<String> operations() {
        Set<String> out = new TreeSet<>();
        document.path("paths").properties().forEach(path -> path.getValue().properties().forEach(op -> {
            if (METHODS.contains(op.getKey())) {
                out.add(op.getKey().toUpperCase(Locale.ROOT) + " " + path.getKey());
            }
        }));
        return out;
    }

    /**
     * What is wrong with a response to {@code method template} (empty: it is documented and its body validates): an
     * undocumented status, an undocumented content type, a body where none is documented, or schema violations.
     */
    List<String> violations(String method, String template, int status, String contentType, String body) {
        String operation = "/paths/" + escape(template) + "/" + method.toLowerCase(Locale.ROOT);
        JsonNode op = document.at(operation);
        if (op.isMissingNode()) {
            return List.of(method + " " + template + " is not documented");
        }
        String responsePointer = operation + "/responses/" + status;
        JsonNode response = document.at(responsePointer);
        if (response.isMissingNode()) {
            return List.of(method + " " + template + " answered " + status + ", which is not documented: " + body);
        }
        if (response.has("$ref")) {
            responsePointer = response.get("$ref").asText().substring(1);
            response = document.at(responsePointer);
        }
        JsonNode content = response.path("content");
        if (content.isEmpty()) {
            return body == null || body.isEmpty() ? List.of()
                    : List.of(method + " " + template + " " + status + " documents no body but sent: " + body);
        }
        String mediaType = contentType == null ? "" : contentType.split(";")[0].strip().toLowerCase(Locale.ROOT);
        if (!content.has(mediaType)) {
            return List.of(method + " " + template + " " + status + " sent content type '" + contentType
                    + "'; documented: " + fieldNames(content));
        }
        if (!mediaType.endsWith("json")) {
            return List.of();
        }
        String schemaPointer = responsePointer + "/content/" + escape(mediaType) + "/schema";
        return validate(schemaPointer, body).stream()
                .map(error -> method + " " + template + " " + status + ": " + error + " in " + body)
                .toList();
    }

    /** Schema violations of a JSON text against the schema at a JSON pointer into the document. */
    List<String> validate(String schemaPointer, String json) {
        JsonSchema schema = schemas.getSchema(SchemaLocation.of(BASE + "#" + schemaPointer), config);
        return schema.validate(json, InputFormat.JSON).stream().map(Object::toString).toList();
    }

    /** Every example (of a media type or a parameter) that does not validate against its own schema. */
    List<String> invalidExamples() {
        List<String> out = new ArrayList<>();
        collectExamples(document, "", out);
        return out;
    }

    private void collectExamples(JsonNode node, String pointer, List<String> out) {
        if (node.isObject()) {
            if (node.has("schema") && (node.has("examples") || node.has("example"))) {
                List<JsonNode> values = new ArrayList<>();
                if (node.has("example")) {
                    values.add(node.get("example"));
                }
                node.path("examples").forEach(example -> values.add(example.path("value")));
                for (JsonNode value : values) {
                    if (value.isMissingNode()) {
                        out.add(pointer + ": an example without a value");
                        continue;
                    }
                    String json = value.toString();
                    validate(pointer + "/schema", json).forEach(error -> out.add(pointer + ": " + error + " in "
                            + json));
                }
            }
            node.properties().forEach(field -> {
                if (!field.getKey().equals("schema")) {
                    collectExamples(field.getValue(), pointer + "/" + escape(field.getKey()), out);
                }
            });
        } else if (node.isArray()) {
            for (int i = 0; i < node.size(); i++) {
                collectExamples(node.get(i), pointer + "/" + i, out);
            }
        }
    }

    private static List<String> fieldNames(JsonNode node) {
        List<String> names = new ArrayList<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }

    /** A JSON pointer token (RFC 6901). */
    static String escape(String token) {
        return token.replace("~", "~0").replace("/", "~1");
    }
}
