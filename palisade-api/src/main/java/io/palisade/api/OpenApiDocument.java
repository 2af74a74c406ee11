package io.palisade.api;

import io.javalin.Javalin;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.io.InputStream;

/**
 * The OpenAPI 3.1 description of every route on the API listener (the {@code /v1} API, {@code /metrics} and the
 * broker's), served without a key at {@code GET /v1/openapi.json}. The document is the resource
 * {@code io/palisade/api/openapi.json}, read once; {@code TestOpenApiContract} checks it against the live router and
 * the live responses. Thread-safe (immutable).
 */
final class OpenApiDocument {
    static final String PATH = "/v1/openapi.json";
    private static final String RESOURCE = "openapi.json";

    private final byte[] document;

    private OpenApiDocument(byte[] document) {
        this.document = document;
    }

    static OpenApiDocument load() {
        try (InputStream in = OpenApiDocument.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new PalisadeException(ErrorCode.INTERNAL, "the OpenAPI document io/palisade/api/" + RESOURCE
                        + " is missing from the palisade-api jar; rebuild palisade");
            }
            return new OpenApiDocument(in.readAllBytes());
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot read the OpenAPI document io/palisade/api/"
                    + RESOURCE + ": " + e.getMessage(), e);
        }
    }

    void register(Javalin app) {
        app.get(PATH, ctx -> ctx.contentType("application/json").result(document));
    }
}
