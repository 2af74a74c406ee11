package io.palisade.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** PostgreSQL wire-protocol constants and message builders used by the proxy. Stateless and thread-safe. */
final class PgWire {
    static final int SSL_REQUEST = 80877103;
    static final int GSSENC_REQUEST = 80877104;
    static final int CANCEL_REQUEST = 80877102;
    static final int PROTOCOL_3_0 = 3 << 16;
    static final byte TLS_HANDSHAKE_RECORD = 0x16;

    static final int AUTH_OK = 0;
    static final int AUTH_CLEARTEXT = 3;
    static final int AUTH_MD5 = 5;
    static final int AUTH_SASL = 10;
    static final int AUTH_SASL_CONTINUE = 11;
    static final int AUTH_SASL_FINAL = 12;

    static final String SQLSTATE_PROTOCOL_VIOLATION = "08P01";
    static final String SQLSTATE_INVALID_AUTHORIZATION = "28000";
    static final String SQLSTATE_INVALID_PASSWORD = "28P01";
    static final String SQLSTATE_FEATURE_NOT_SUPPORTED = "0A000";
    static final String SQLSTATE_REJECTED_CONNECTION = "08004";
    static final String SQLSTATE_CONNECTION_FAILURE = "08006";

    private PgWire() {}

    /** A FATAL ErrorResponse ({@code E}) with severity, SQLSTATE and message. */
    static ByteBuf errorResponse(ByteBufAllocator alloc, String sqlState, String message) {
        ByteBuf buf = alloc.buffer(64 + message.length() * 3);
        buf.writeByte('E');
        int lengthIndex = buf.writerIndex();
        buf.writeInt(0);
        field(buf, 'S', "FATAL");
        field(buf, 'V', "FATAL");
        field(buf, 'C', sqlState);
        field(buf, 'M', message);
        buf.writeByte(0);
        buf.setInt(lengthIndex, buf.writerIndex() - lengthIndex);
        return buf;
    }

    private static void field(ByteBuf buf, char type, String value) {
        buf.writeByte(type);
        writeCString(buf, value);
    }

    /** An Authentication request ({@code R}) with the given code and optional payload. */
    static ByteBuf authentication(ByteBufAllocator alloc, int code, byte[] payload) {
        ByteBuf buf = alloc.buffer(9 + payload.length);
        buf.writeByte('R');
        buf.writeInt(8 + payload.length);
        buf.writeInt(code);
        buf.writeBytes(payload);
        return buf;
    }

    /** AuthenticationSASL listing mechanisms, each NUL-terminated, then a final NUL. */
    static ByteBuf authenticationSasl(ByteBufAllocator alloc, List<String> mechanisms) {
        ByteBuf payload = alloc.buffer();
        try {
            for (String mechanism : mechanisms) {
                writeCString(payload, mechanism);
            }
            payload.writeByte(0);
            byte[] bytes = new byte[payload.readableBytes()];
            payload.readBytes(bytes);
            return authentication(alloc, AUTH_SASL, bytes);
        } finally {
            payload.release();
        }
    }

    /** NegotiateProtocolVersion ({@code v}): newest minor version we support and the options we did not recognise. */
    static ByteBuf negotiateProtocolVersion(ByteBufAllocator alloc, int newestMinor, List<String> unrecognized) {
        ByteBuf buf = alloc.buffer();
        buf.writeByte('v');
        int lengthIndex = buf.writerIndex();
        buf.writeInt(0);
        buf.writeInt(newestMinor);
        buf.writeInt(unrecognized.size());
        unrecognized.forEach(name -> writeCString(buf, name));
        buf.setInt(lengthIndex, buf.writerIndex() - lengthIndex);
        return buf;
    }

    /** A frontend password-type message ({@code p}) with the given raw body. */
    static ByteBuf passwordMessage(ByteBufAllocator alloc, byte[] body) {
        ByteBuf buf = alloc.buffer(5 + body.length);
        buf.writeByte('p');
        buf.writeInt(4 + body.length);
        buf.writeBytes(body);
        return buf;
    }

    /** SASLInitialResponse: mechanism name, Int32 length of the client-first message, the message. */
    static ByteBuf saslInitialResponse(ByteBufAllocator alloc, String mechanism, String clientFirst) {
        byte[] mech = mechanism.getBytes(StandardCharsets.UTF_8);
        byte[] data = clientFirst.getBytes(StandardCharsets.UTF_8);
        ByteBuf buf = alloc.buffer(5 + mech.length + 1 + 4 + data.length);
        buf.writeByte('p');
        buf.writeInt(4 + mech.length + 1 + 4 + data.length);
        buf.writeBytes(mech);
        buf.writeByte(0);
        buf.writeInt(data.length);
        buf.writeBytes(data);
        return buf;
    }

    /** A CancelRequest for the given backend process id and secret key. */
    static ByteBuf cancelRequest(ByteBufAllocator alloc, int processId, int secretKey) {
        ByteBuf buf = alloc.buffer(16);
        buf.writeInt(16);
        buf.writeInt(CANCEL_REQUEST);
        buf.writeInt(processId);
        buf.writeInt(secretKey);
        return buf;
    }

    /** BackendKeyData ({@code K}) with the given process id and key. */
    static ByteBuf backendKeyData(ByteBufAllocator alloc, int processId, int secretKey) {
        ByteBuf buf = alloc.buffer(13);
        buf.writeByte('K');
        buf.writeInt(12);
        buf.writeInt(processId);
        buf.writeInt(secretKey);
        return buf;
    }

    /** ParameterStatus ({@code S}) reporting {@code name} = {@code value}. */
    static ByteBuf parameterStatus(ByteBufAllocator alloc, String name, String value) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        byte[] v = value.getBytes(StandardCharsets.UTF_8);
        ByteBuf buf = alloc.buffer(1 + 4 + n.length + 1 + v.length + 1);
        buf.writeByte('S');
        buf.writeInt(4 + n.length + 1 + v.length + 1);
        buf.writeBytes(n).writeByte(0);
        buf.writeBytes(v).writeByte(0);
        return buf;
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
        Map<Character, String> fields = new LinkedHashMap<>();
        while (body.isReadable()) {
            byte type = body.readByte();
            if (type == 0) {
                break;
            }
            String value = readCString(body);
            if (value == null) {
                break;
            }
            fields.put((char) type, value);
        }
        return fields;
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
}
