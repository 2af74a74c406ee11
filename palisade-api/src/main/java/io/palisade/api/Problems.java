package io.palisade.api;

import io.javalin.http.Context;
import io.palisade.spi.ErrorCode;
import java.util.LinkedHashMap;
import java.util.Map;

/** RFC 9457 problem details: the only error body the REST API sends. Stateless. */
public final class Problems {
    public static final String CONTENT_TYPE = "application/problem+json";

    private Problems() {}

    public static void send(Context ctx, ErrorCode code, String detail) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("type", "urn:palisade:problem:" + code.slug());
        body.put("title", title(code));
        body.put("status", code.httpStatus());
        body.put("detail", detail);
        body.put("code", code.slug());
        body.put("instance", ctx.path());
        ctx.status(code.httpStatus());
        ctx.contentType(CONTENT_TYPE);
        ctx.result(Json.write(body));
    }

    static String title(ErrorCode code) {
        return switch (code) {
            case INVALID_REQUEST -> "Invalid request";
            case UNAUTHENTICATED -> "Authentication required";
            case NOT_FOUND -> "Not found";
            case METHOD_NOT_ALLOWED -> "Method not allowed";
            case CONFLICT -> "Conflict with the current state";
            case PAYLOAD_TOO_LARGE -> "Request body too large";
            case UNSUPPORTED_MEDIA_TYPE -> "Unsupported media type";
            case QUOTA_EXCEEDED -> "Quota exceeded";
            case TOO_MANY_CONNECTIONS -> "Too many connections";
            case CAPACITY_EXHAUSTED -> "Capacity exhausted";
            case NOT_READY -> "Not ready";
            case TIMEOUT -> "Timed out";
            case DRIVER_FAILURE -> "Instance failure";
            case INTERNAL -> "Internal error";
        };
    }
}
