package io.palisade.spi;

import static java.util.Objects.requireNonNull;

/**
 * Every error palisade reports, with its category. This enum is the ONE place that maps an error to an HTTP status,
 * a PostgreSQL SQLSTATE (for errors sent on the wire) and a CLI exit code.
 */
public enum ErrorCode {
    INVALID_REQUEST(Category.USER, 400, "22023", 2),
    UNAUTHENTICATED(Category.USER, 401, "28000", 3),
    NOT_FOUND(Category.USER, 404, "3D000", 4),
    METHOD_NOT_ALLOWED(Category.USER, 405, "0A000", 2),
    CONFLICT(Category.USER, 409, "55000", 5),
    PAYLOAD_TOO_LARGE(Category.USER, 413, "54000", 2),
    UNSUPPORTED_MEDIA_TYPE(Category.USER, 415, "22023", 2),
    /** An account's quota (databases, or vCPU, memory or disk per database or in total) would be exceeded. */
    QUOTA_EXCEEDED(Category.USER, 403, "53400", 6),
    TOO_MANY_CONNECTIONS(Category.CAPACITY, 429, "53300", 6),
    CAPACITY_EXHAUSTED(Category.CAPACITY, 503, "53000", 6),
    NOT_READY(Category.CAPACITY, 503, "57P03", 6),
    TIMEOUT(Category.CAPACITY, 504, "57014", 6),
    DRIVER_FAILURE(Category.INTERNAL, 500, "58000", 7),
    INTERNAL(Category.INTERNAL, 500, "XX000", 7);

    public enum Category {
        USER,
        CAPACITY,
        INTERNAL
    }

    private final Category category;
    private final int httpStatus;
    private final String sqlState;
    private final int exitCode;

    ErrorCode(Category category, int httpStatus, String sqlState, int exitCode) {
        this.category = requireNonNull(category, "category is null");
        this.httpStatus = httpStatus;
        this.sqlState = requireNonNull(sqlState, "sqlState is null");
        this.exitCode = exitCode;
    }

    public Category category() {
        return category;
    }

    public int httpStatus() {
        return httpStatus;
    }

    public String sqlState() {
        return sqlState;
    }

    public int exitCode() {
        return exitCode;
    }

    /** The dash-case form used in problem+json {@code code} fields and problem type URIs. */
    public String slug() {
        return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }

    public static ErrorCode fromHttpStatus(int status) {
        for (ErrorCode code : values()) {
            if (code.httpStatus == status) {
                return code;
            }
        }
        return status >= 500 ? INTERNAL : INVALID_REQUEST;
    }
}
