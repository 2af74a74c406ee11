package io.palisade.proxy;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/** Hand-built PostgreSQL protocol bytes for tests that must control every byte. */
final class RawPg {
    record Message(char type, byte[] body) {
        int int32(int offset) {
            return ByteBuffer.wrap(body).getInt(offset);
        }

        String text() {
            return new String(body, StandardCharsets.UTF_8);
        }
    }

    private RawPg() {}

    static byte[] startup(int major, int minor, Map<String, String> parameters) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        parameters.forEach((name, value) -> {
            body.writeBytes(name.getBytes(StandardCharsets.UTF_8));
            body.write(0);
            body.writeBytes(value.getBytes(StandardCharsets.UTF_8));
            body.write(0);
        });
        body.write(0);
        ByteBuffer buffer = ByteBuffer.allocate(8 + body.size());
        buffer.putInt(8 + body.size()).putInt((major << 16) | minor).put(body.toByteArray());
        return buffer.array();
    }

    static byte[] sslRequest() {
        return ByteBuffer.allocate(8).putInt(8).putInt(PgWire.SSL_REQUEST).array();
    }

    static byte[] gssencRequest() {
        return ByteBuffer.allocate(8).putInt(8).putInt(PgWire.GSSENC_REQUEST).array();
    }

    static byte[] cancelRequest(int processId, int key) {
        return ByteBuffer.allocate(16).putInt(16).putInt(PgWire.CANCEL_REQUEST).putInt(processId).putInt(key).array();
    }

    static byte[] password(String password) {
        byte[] bytes = password.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(6 + bytes.length).put((byte) 'p').putInt(5 + bytes.length).put(bytes).put((byte) 0)
                .array();
    }

    static byte[] saslInitial(String clientFirst) {
        byte[] mechanism = "SCRAM-SHA-256".getBytes(StandardCharsets.UTF_8);
        byte[] data = clientFirst.getBytes(StandardCharsets.UTF_8);
        int length = 4 + mechanism.length + 1 + 4 + data.length;
        return ByteBuffer.allocate(1 + length).put((byte) 'p').putInt(length).put(mechanism).put((byte) 0)
                .putInt(data.length).put(data).array();
    }

    static byte[] saslResponse(String data) {
        byte[] bytes = data.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(5 + bytes.length).put((byte) 'p').putInt(4 + bytes.length).put(bytes).array();
    }

    static Message read(InputStream in) throws IOException {
        DataInputStream data = new DataInputStream(in);
        int type = data.read();
        if (type < 0) {
            return null;
        }
        int length = data.readInt();
        byte[] body = new byte[length - 4];
        data.readFully(body);
        return new Message((char) type, body);
    }

    /** The M (message) field of an ErrorResponse body. */
    static String errorMessage(Message message) {
        return errorField(message, 'M');
    }

    static String errorField(Message message, char field) {
        byte[] body = message.body();
        int i = 0;
        while (i < body.length && body[i] != 0) {
            char type = (char) body[i++];
            int end = i;
            while (body[end] != 0) {
                end++;
            }
            String value = new String(body, i, end - i, StandardCharsets.UTF_8);
            if (type == field) {
                return value;
            }
            i = end + 1;
        }
        return null;
    }
}
