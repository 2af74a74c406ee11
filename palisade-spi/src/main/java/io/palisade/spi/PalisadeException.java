package io.palisade.spi;

import static java.util.Objects.requireNonNull;

/**
 * The one unchecked exception palisade throws for anything a caller should see. The message is product text: say what
 * failed, the state that matters and what to do next; never put a secret in it.
 */
public class PalisadeException extends RuntimeException {
    private final ErrorCode errorCode;

    public PalisadeException(ErrorCode errorCode, String message) {
        super(requireNonNull(message, "message is null"));
        this.errorCode = requireNonNull(errorCode, "errorCode is null");
    }

    public PalisadeException(ErrorCode errorCode, String message, Throwable cause) {
        super(requireNonNull(message, "message is null"), cause);
        this.errorCode = requireNonNull(errorCode, "errorCode is null");
    }

    public ErrorCode errorCode() {
        return errorCode;
    }

    public static PalisadeException invalid(String message) {
        return new PalisadeException(ErrorCode.INVALID_REQUEST, message);
    }

    public static PalisadeException notFound(String what) {
        return new PalisadeException(ErrorCode.NOT_FOUND, what);
    }
}
