package io.palisade.testing;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * A keep-alive HTTP/1.1 client on a raw socket to a loopback port, for benchmarks that must not measure a client
 * library: one request at a time, written as given, and a 200 answer with a {@code Content-Length} body read whole
 * (up to 64 KiB). Not thread-safe: one caller per connection. AutoCloseable: close ends the connection.
 */
public final class RawHttpClient implements AutoCloseable {
    private static final int MAX_BODY = 64 * 1024;

    private final Socket socket;
    private final OutputStream out;
    private final InputStream in;
    private final byte[] body = new byte[MAX_BODY];

    public RawHttpClient(int port) throws IOException {
        socket = new Socket("127.0.0.1", port);
        socket.setTcpNoDelay(true);
        out = socket.getOutputStream();
        in = new BufferedInputStream(socket.getInputStream(), MAX_BODY);
    }

    /** A POST of {@code json} to {@code path} with the extra header lines given (each ending in CRLF). */
    public static byte[] post(String path, String headers, String json) {
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        return ("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "Content-Length: " + bytes.length
                + "\r\n\r\n" + json).getBytes(StandardCharsets.UTF_8);
    }

    /** Sends one whole request and reads its answer; fails on anything but a 200 with a body of a known length. */
    public void send(byte[] request) throws IOException {
        out.write(request);
        out.flush();
        String status = line();
        int length = -1;
        String header;
        while (!(header = line()).isEmpty()) {
            if (header.regionMatches(true, 0, "Content-Length:", 0, 15)) {
                length = Integer.parseInt(header.substring(15).trim());
            }
        }
        if (length < 0 || length > body.length) {
            throw new IOException("no Content-Length, or one over " + body.length + ", in the answer (" + status + ")");
        }
        int read = 0;
        while (read < length) {
            int n = in.read(body, read, length - read);
            if (n < 0) {
                throw new IOException("connection closed mid-body");
            }
            read += n;
        }
        if (!status.startsWith("HTTP/1.1 200")) {
            throw new IOException("the server answered " + status + ": "
                    + new String(body, 0, read, StandardCharsets.UTF_8));
        }
    }

    private String line() throws IOException {
        StringBuilder line = new StringBuilder();
        int c;
        while ((c = in.read()) != '\n') {
            if (c < 0) {
                throw new IOException("connection closed");
            }
            if (c != '\r') {
                line.append((char) c);
            }
        }
        return line.toString();
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
