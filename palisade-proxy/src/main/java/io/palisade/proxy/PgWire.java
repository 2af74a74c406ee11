package io.palisade.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.palisade.pgwire.PgMessages;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * The Netty side of the wire codecs: the messages of {@link PgMessages} (palisade-pgwire, the one home of PostgreSQL
 * protocol knowledge) as {@link ByteBuf}s, and NUL-terminated string reads from buffers. Stateless and thread-safe.
 */
final class PgWire {
    static final int SSL_REQUEST = PgMessages.SSL_REQUEST;
    static final int GSSENC_REQUEST = PgMessages.GSSENC_REQUEST;
    static final int CANCEL_REQUEST = PgMessages.CANCEL_REQUEST;
    static final byte TLS_HANDSHAKE_RECORD = PgMessages.TLS_HANDSHAKE_RECORD;

    static final int AUTH_OK = PgMessages.AUTH_OK;
    static final int AUTH_CLEARTEXT = PgMessages.AUTH_CLEARTEXT;
    static final int AUTH_MD5 = PgMessages.AUTH_MD5;
    static final int AUTH_SASL = PgMessages.AUTH_SASL;
    static final int AUTH_SASL_CONTINUE = PgMessages.AUTH_SASL_CONTINUE;
    static final int AUTH_SASL_FINAL = PgMessages.AUTH_SASL_FINAL;

    static final String SQLSTATE_PROTOCOL_VIOLATION = PgMessages.SQLSTATE_PROTOCOL_VIOLATION;
    static final String SQLSTATE_INVALID_AUTHORIZATION = PgMessages.SQLSTATE_INVALID_AUTHORIZATION;
    static final String SQLSTATE_INVALID_PASSWORD = PgMessages.SQLSTATE_INVALID_PASSWORD;
    static final String SQLSTATE_FEATURE_NOT_SUPPORTED = PgMessages.SQLSTATE_FEATURE_NOT_SUPPORTED;
    static final String SQLSTATE_REJECTED_CONNECTION = PgMessages.SQLSTATE_REJECTED_CONNECTION;
    static final String SQLSTATE_CONNECTION_FAILURE = PgMessages.SQLSTATE_CONNECTION_FAILURE;

    private PgWire() {}

    static ByteBuf errorResponse(ByteBufAllocator alloc, String sqlState, String message) {
        return wrap(PgMessages.errorResponse(sqlState, message));
    }

    static ByteBuf authentication(ByteBufAllocator alloc, int code, byte[] payload) {
        return wrap(PgMessages.authentication(code, payload));
    }

    static ByteBuf authenticationSasl(ByteBufAllocator alloc, List<String> mechanisms) {
        return wrap(PgMessages.authenticationSasl(mechanisms));
    }

    static ByteBuf negotiateProtocolVersion(ByteBufAllocator alloc, int newestMinor, List<String> unrecognized) {
        return wrap(PgMessages.negotiateProtocolVersion(newestMinor, unrecognized));
    }

    static ByteBuf passwordMessage(ByteBufAllocator alloc, byte[] body) {
        return wrap(PgMessages.passwordMessage(body));
    }

    static ByteBuf saslInitialResponse(ByteBufAllocator alloc, String mechanism, String clientFirst) {
        return wrap(PgMessages.saslInitialResponse(mechanism, clientFirst));
    }

    static ByteBuf cancelRequest(ByteBufAllocator alloc, int processId, int secretKey) {
        return wrap(PgMessages.cancelRequest(processId, secretKey));
    }

    static ByteBuf backendKeyData(ByteBufAllocator alloc, int processId, int secretKey) {
        return wrap(PgMessages.backendKeyData(processId, secretKey));
    }

    static ByteBuf parameterStatus(ByteBufAllocator alloc, String name, String value) {
        return wrap(PgMessages.parameterStatus(name, value));
    }

    static ByteBuf query(String sql) {
        return wrap(PgMessages.query(sql));
    }

    static ByteBuf terminate() {
        return wrap(PgMessages.terminate());
    }

    static ByteBuf readyForQuery(char status) {
        return wrap(PgMessages.readyForQuery(status));
    }

    private static ByteBuf wrap(byte[] bytes) {
        return Unpooled.wrappedBuffer(bytes);
    }

    /** Whether a whole ParameterStatus message (type and length included) reports the parameter {@code name}. */
    static boolean isParameterStatus(ByteBuf message, String name) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        int start = message.readerIndex() + 5;
        if (message.readableBytes() < 5 + n.length + 1 || message.getByte(start + n.length) != 0) {
            return false;
        }
        for (int i = 0; i < n.length; i++) {
            if (message.getByte(start + i) != n[i]) {
                return false;
            }
        }
        return true;
    }

    /** Reads the fields of an ErrorResponse/NoticeResponse body (without type and length). */
    static Map<Character, String> errorFields(ByteBuf body) {
        return PgMessages.errorFields(ByteBufUtil.getBytes(body));
    }

    /**
     * The client-first message of a SASLInitialResponse body (mechanism, Int32 length, data), or empty if the body is
     * malformed or names another mechanism.
     */
    static java.util.Optional<String> saslInitialData(ByteBuf body, String mechanism) {
        String named = readCString(body);
        if (named == null || !named.equals(mechanism) || body.readableBytes() < 4) {
            return java.util.Optional.empty();
        }
        int length = body.readInt();
        if (length < 0 || length > body.readableBytes()) {
            return java.util.Optional.empty();
        }
        return java.util.Optional.of(body.toString(body.readerIndex(), length, StandardCharsets.UTF_8));
    }

    static void writeCString(ByteBuf buf, String value) {
        buf.writeCharSequence(value, StandardCharsets.UTF_8);
        buf.writeByte(0);
    }

    /** Reads a NUL-terminated UTF-8 string, or returns null (reading nothing) if no terminator is present. */
    static String readCString(ByteBuf buf) {
        int end = buf.indexOf(buf.readerIndex(), buf.writerIndex(), (byte) 0);
        if (end < 0) {
            return null;
        }
        String value = buf.toString(buf.readerIndex(), end - buf.readerIndex(), StandardCharsets.UTF_8);
        buf.readerIndex(end + 1);
        return value;
    }

    /**
     * Reads a NUL-terminated string that must be valid UTF-8; returns null (reading nothing) if no terminator is
     * present, and throws {@link java.nio.charset.CharacterCodingException} wrapped in IllegalArgumentException if
     * the bytes are not UTF-8.
     */
    static String readStrictCString(ByteBuf buf) {
        int end = buf.indexOf(buf.readerIndex(), buf.writerIndex(), (byte) 0);
        if (end < 0) {
            return null;
        }
        try {
            String value = StandardCharsets.UTF_8.newDecoder()
                    .decode(buf.nioBuffer(buf.readerIndex(), end - buf.readerIndex())).toString();
            buf.readerIndex(end + 1);
            return value;
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IllegalArgumentException("not valid UTF-8", e);
        }
    }
}
