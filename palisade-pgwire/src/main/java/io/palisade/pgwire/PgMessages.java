package io.palisade.pgwire;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.ByteArrayOutputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * PostgreSQL protocol-3 constants and the messages a server-side component (the proxy) writes, as byte arrays:
 * request codes, authentication codes, SQLSTATEs it sends, and builders for ErrorResponse, Authentication*,
 * NegotiateProtocolVersion, ParameterStatus, BackendKeyData, ReadyForQuery, CancelRequest, and the frontend password
 * and simple Query messages.
 * Transport-neutral (no Netty). Stateless and thread-safe.
 */
public final class PgMessages {
    public static final int SSL_REQUEST = 80877103;
    public static final int GSSENC_REQUEST = 80877104;
    public static final int CANCEL_REQUEST = 80877102;
    public static final int PROTOCOL_3_0 = 3 << 16;
    /** The first byte of a TLS handshake record (direct TLS, PostgreSQL 17's {@code sslnegotiation=direct}). */
    public static final byte TLS_HANDSHAKE_RECORD = 0x16;

    public static final int AUTH_OK = 0;
    public static final int AUTH_CLEARTEXT = 3;
    public static final int AUTH_MD5 = 5;
    public static final int AUTH_SASL = 10;
    public static final int AUTH_SASL_CONTINUE = 11;
    public static final int AUTH_SASL_FINAL = 12;

    public static final String SQLSTATE_PROTOCOL_VIOLATION = "08P01";
    public static final String SQLSTATE_INVALID_AUTHORIZATION = "28000";
    public static final String SQLSTATE_INVALID_PASSWORD = "28P01";
    public static final String SQLSTATE_FEATURE_NOT_SUPPORTED = "0A000";
    public static final String SQLSTATE_REJECTED_CONNECTION = "08004";
    public static final String SQLSTATE_CONNECTION_FAILURE = "08006";
    public static final String SQLSTATE_TOO_MANY_CONNECTIONS = "53300";

    private PgMessages() {}

    /** A FATAL ErrorResponse ({@code E}) with severity, SQLSTATE and message. */
    public static byte[] errorResponse(String sqlState, String message) {
        Body body = new Body();
        field(body, 'S', "FATAL");
        field(body, 'V', "FATAL");
        field(body, 'C', sqlState);
        field(body, 'M', message);
        body.write(0);
        return body.message('E');
    }

    private static void field(Body body, char type, String value) {
        body.write(type);
        body.cstring(value);
    }

    /** An Authentication request ({@code R}) with the given code and payload. */
    public static byte[] authentication(int code, byte[] payload) {
        Body body = new Body();
        body.int32(code);
        body.writeBytes(payload);
        return body.message('R');
    }

    /** AuthenticationSASL listing mechanisms, each NUL-terminated, then a final NUL. */
    public static byte[] authenticationSasl(List<String> mechanisms) {
        Body body = new Body();
        body.int32(AUTH_SASL);
        mechanisms.forEach(body::cstring);
        body.write(0);
        return body.message('R');
    }

    /** NegotiateProtocolVersion ({@code v}): newest minor version supported and the options not recognised. */
    public static byte[] negotiateProtocolVersion(int newestMinor, List<String> unrecognized) {
        Body body = new Body();
        body.int32(newestMinor);
        body.int32(unrecognized.size());
        unrecognized.forEach(body::cstring);
        return body.message('v');
    }

    /** A frontend password-type message ({@code p}) with the given raw body. */
    public static byte[] passwordMessage(byte[] raw) {
        Body body = new Body();
        body.writeBytes(raw);
        return body.message('p');
    }

    /** A PasswordMessage ({@code p}) carrying a NUL-terminated string (cleartext or MD5 response). */
    public static byte[] passwordMessage(String password) {
        Body body = new Body();
        body.cstring(password);
        return body.message('p');
    }

    /** SASLInitialResponse: mechanism name, Int32 length of the client-first message, the message. */
    public static byte[] saslInitialResponse(String mechanism, String clientFirst) {
        byte[] data = clientFirst.getBytes(UTF_8);
        Body body = new Body();
        body.cstring(mechanism);
        body.int32(data.length);
        body.writeBytes(data);
        return body.message('p');
    }

    /** A StartupMessage (protocol 3.0) with these parameters, in their order ({@code user} first, by convention). */
    public static byte[] startupMessage(Map<String, String> parameters) {
        Body body = new Body();
        body.int32(PROTOCOL_3_0);
        parameters.forEach((name, value) -> {
            body.cstring(name);
            body.cstring(value);
        });
        body.writeBytes(new byte[] {0});
        return body.untyped();
    }

    /** A StartupMessage for {@code user} and {@code database}. */
    public static byte[] startupMessage(String user, String database) {
        Map<String, String> parameters = new java.util.LinkedHashMap<>();
        parameters.put("user", user);
        parameters.put("database", database);
        return startupMessage(parameters);
    }

    /** A CancelRequest for the given backend process id and secret key. */
    public static byte[] cancelRequest(int processId, int secretKey) {
        Body body = new Body();
        body.int32(CANCEL_REQUEST);
        body.int32(processId);
        body.int32(secretKey);
        return body.untyped();
    }

    /** BackendKeyData ({@code K}) with the given process id and key. */
    public static byte[] backendKeyData(int processId, int secretKey) {
        Body body = new Body();
        body.int32(processId);
        body.int32(secretKey);
        return body.message('K');
    }

    /** ParameterStatus ({@code S}) reporting {@code name} = {@code value}. */
    public static byte[] parameterStatus(String name, String value) {
        Body body = new Body();
        body.cstring(name);
        body.cstring(value);
        return body.message('S');
    }

    /** A simple Query ({@code Q}, frontend) running {@code sql}. */
    public static byte[] query(String sql) {
        Body body = new Body();
        body.cstring(sql);
        return body.message('Q');
    }

    /** Terminate ({@code X}): the client ends the session. */
    public static byte[] terminate() {
        return new Body().message('X');
    }

    /** ReadyForQuery ({@code Z}) with the transaction status {@code I}, {@code T} or {@code E}. */
    public static byte[] readyForQuery(char status) {
        Body body = new Body();
        body.write(status);
        return body.message('Z');
    }

    /** The fields of an ErrorResponse/NoticeResponse body (after type and length), keyed by their one-letter code. */
    public static Map<Character, String> errorFields(byte[] body) {
        Map<Character, String> fields = new LinkedHashMap<>();
        int at = 0;
        while (at < body.length && body[at] != 0) {
            char code = (char) body[at++];
            int nul = Bytes.nul(body, at, body.length);
            if (nul < 0) {
                break;
            }
            fields.putIfAbsent(code, Bytes.utf8(body, at, nul - at));
            at = nul + 1;
        }
        return fields;
    }

    /** A message body under construction. */
    private static final class Body extends ByteArrayOutputStream {
        void int32(int value) {
            write(value >>> 24);
            write(value >>> 16);
            write(value >>> 8);
            write(value);
        }

        void cstring(String value) {
            if (value.indexOf('\0') >= 0) {
                throw new IllegalArgumentException("protocol strings cannot contain NUL characters");
            }
            writeBytes(value.getBytes(UTF_8));
            write(0);
        }

        byte[] message(char type) {
            byte[] out = new byte[5 + count];
            out[0] = (byte) type;
            putInt(out, 1, 4 + count);
            System.arraycopy(buf, 0, out, 5, count);
            return out;
        }

        byte[] untyped() {
            byte[] out = new byte[4 + count];
            putInt(out, 0, 4 + count);
            System.arraycopy(buf, 0, out, 4, count);
            return out;
        }

        private static void putInt(byte[] out, int at, int value) {
            out[at] = (byte) (value >>> 24);
            out[at + 1] = (byte) (value >>> 16);
            out[at + 2] = (byte) (value >>> 8);
            out[at + 3] = (byte) value;
        }
    }
}
