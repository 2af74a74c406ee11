package io.palisade.broker;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.javalin.http.Context;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.util.function.BooleanSupplier;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.util.BufferUtil;

/** Request-body limits, bounded response buffers and client-disconnect detection for the broker's HTTP routes. */
final class HttpSupport {
    private HttpSupport() {}

    /** The request body was larger than allowed. */
    static final class TooLarge extends RuntimeException {
        TooLarge() {
            super("request body too large", null, false, false);
        }
    }

    /** The response outgrew its byte budget. */
    static final class ResponseTooLarge extends RuntimeException {
        ResponseTooLarge() {
            super("response too large", null, false, false);
        }
    }

    /** Reads the body ourselves (ignoring Javalin's own limit) and stops at {@code max} bytes. */
    static byte[] readBody(Context ctx, long max) throws IOException {
        long declared = ctx.req().getContentLengthLong();
        if (declared > max) {
            throw new TooLarge();
        }
        InputStream in = ctx.req().getInputStream();
        ByteArrayOutputStream body = new ByteArrayOutputStream(declared > 0 ? (int) declared : 512);
        byte[] chunk = new byte[16 * 1024];
        long total = 0;
        int n;
        while ((n = in.read(chunk)) >= 0) {
            total += n;
            if (total > max) {
                throw new TooLarge();
            }
            body.write(chunk, 0, n);
        }
        return body.toByteArray();
    }

    /**
     * Counts the JSON values (scalars, arrays and objects) in a body with a streaming parser, stopping past
     * {@code max}: a body of many tiny values would take ~30 times its size as a tree. Malformed JSON counts as what
     * was read before the error (the tree parse that follows reports it).
     */
    static boolean hasAtMostValues(byte[] body, ObjectMapper mapper, int max) {
        int count = 0;
        try (JsonParser parser = mapper.getFactory().createParser(body)) {
            JsonToken token;
            while ((token = parser.nextToken()) != null) {
                if (token != JsonToken.FIELD_NAME && !token.isStructEnd() && ++count > max) {
                    return false;
                }
            }
        } catch (IOException e) {
            return true;
        }
        return true;
    }

    /**
     * Tells whether the HTTP/1.x client closed its connection while we wait for the database. Jetty does not notice a
     * closed HTTP/1.1 connection while a request is being handled, so this reads from the connection: clients do not
     * pipeline while waiting for an answer, so end-of-stream is the only thing expected there. If bytes do arrive
     * (a pipelining client), the connection is marked to be closed after this response since they cannot be given
     * back. Other protocols (HTTP/2 multiplexes the connection) report "still here".
     */
    static BooleanSupplier clientGone(Context ctx) {
        String protocol = ctx.req().getProtocol();
        if (protocol == null || !protocol.startsWith("HTTP/1")) {
            return () -> false;
        }
        EndPoint endPoint;
        try {
            endPoint = Request.getBaseRequest(ctx.req()).getHttpChannel().getEndPoint();
        } catch (RuntimeException e) {
            return () -> false;
        }
        return () -> {
            try {
                ByteBuffer probe = BufferUtil.allocate(1);
                int n = endPoint.fill(probe);
                if (n > 0) {
                    ctx.header("Connection", "close");
                }
                return n < 0;
            } catch (IOException e) {
                return true;
            }
        };
    }

    /** A byte buffer that refuses to grow past a limit. Not thread-safe. */
    static final class BoundedBuffer extends OutputStream {
        private final long limit;
        private byte[] buffer = new byte[1024];
        private int size;

        BoundedBuffer(long limit) {
            this.limit = limit;
        }

        @Override
        public void write(int b) {
            ensure(1);
            buffer[size++] = (byte) b;
        }

        @Override
        public void write(byte[] bytes, int offset, int length) {
            ensure(length);
            System.arraycopy(bytes, offset, buffer, size, length);
            size += length;
        }

        private void ensure(int extra) {
            if ((long) size + extra > limit) {
                throw new ResponseTooLarge();
            }
            if (size + extra > buffer.length) {
                buffer = java.util.Arrays.copyOf(buffer, (int) Math.min(limit, Math.max(buffer.length * 2L,
                        (long) size + extra)));
            }
        }

        byte[] toByteArray() {
            return java.util.Arrays.copyOf(buffer, size);
        }
    }
}
