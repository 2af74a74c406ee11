package io.palisade.server.hostile;

import io.palisade.testing.TestingTls;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;

/**
 * A hand-driven PostgreSQL client for attacks on the proxy: a TCP socket from a chosen loopback source address (so an
 * attacker is not the owner's 127.0.0.1), raw bytes, SSLRequest and a TLS handshake with SNI trusting palisade's CA,
 * startup packets with any parameters (NUL bytes included). Not thread-safe: one per connection.
 */
final class RawPgClient implements AutoCloseable {
    static final int SSL_REQUEST = io.palisade.pgwire.PgMessages.SSL_REQUEST;

    private Socket socket;
    private InputStream in;
    private OutputStream out;

    private RawPgClient(Socket socket) throws IOException {
        this.socket = socket;
        this.in = socket.getInputStream();
        this.out = socket.getOutputStream();
    }

    /** Connects to the proxy on 127.0.0.1 from {@code source} (any 127.0.0.0/8 address; port chosen by the kernel). */
    static RawPgClient connect(String source, int port) throws IOException {
        Socket socket = new Socket();
        socket.bind(new InetSocketAddress(InetAddress.getByName(source), 0));
        socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 5_000);
        socket.setTcpNoDelay(true);
        return new RawPgClient(socket);
    }

    void write(byte[] bytes) throws IOException {
        out.write(bytes);
        out.flush();
    }

    /** Sends SSLRequest and expects 'S'. */
    void sslRequest() throws IOException {
        write(sslRequestPacket());
        socket.setSoTimeout(10_000);
        int answer = in.read();
        if (answer != 'S') {
            throw new IOException("the proxy answered SSLRequest with " + answer + ", not 'S'");
        }
    }

    /** SSLRequest, then a TLS handshake naming {@code sniHost}, trusting only the CA in {@code caFile}. */
    void startTls(String sniHost, Path caFile) throws IOException {
        sslRequest();
        SSLSocket tls = (SSLSocket) TestingTls.trusting(caFile).getSocketFactory()
                .createSocket(socket, sniHost, socket.getPort(), true);
        SSLParameters parameters = tls.getSSLParameters();
        parameters.setServerNames(List.of(new SNIHostName(sniHost)));
        tls.setSSLParameters(parameters);
        tls.setSoTimeout(10_000);
        tls.startHandshake();
        this.socket = tls;
        this.in = tls.getInputStream();
        this.out = tls.getOutputStream();
    }

    /**
     * Stops sending so that a server waiting for more bytes sees the end: FIN, or inside TLS a close_notify (TLS 1.3
     * half-close).
     */
    void shutdownOutput() throws IOException {
        socket.shutdownOutput();
    }

    /**
     * Reads one backend message (type byte, length, body) within {@code timeout}; empty array when the server closed
     * the connection first.
     */
    byte[] readMessage(Duration timeout) throws IOException {
        socket.setSoTimeout((int) timeout.toMillis());
        DataInputStream data = new DataInputStream(in);
        try {
            int type = data.read();
            if (type < 0) {
                return new byte[0];
            }
            int length = data.readInt();
            if (length < 4 || length > 1 << 20) {
                throw new IOException("implausible message length " + length + " (type " + (char) type + ")");
            }
            byte[] message = new byte[1 + length];
            message[0] = (byte) type;
            message[1] = (byte) (length >>> 24);
            message[2] = (byte) (length >>> 16);
            message[3] = (byte) (length >>> 8);
            message[4] = (byte) length;
            data.readFully(message, 5, length - 4);
            return message;
        } catch (EOFException e) {
            return new byte[0];
        }
    }

    /**
     * Waits for the server to close the connection, discarding what it sends; true if it closed (EOF or reset)
     * within {@code timeout}, false if it was still open then.
     */
    boolean awaitClosed(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        byte[] sink = new byte[8192];
        try {
            while (true) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                socket.setSoTimeout((int) Math.max(1, Math.min(left / 1_000_000, Integer.MAX_VALUE)));
                if (in.read(sink) < 0) {
                    return true;
                }
            }
        } catch (SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true; // reset, or TLS torn down by the server
        }
    }

    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException ignored) {
            // closed already
        }
    }

    static byte[] sslRequestPacket() {
        return new byte[] {0, 0, 0, 8, 0x04, (byte) 0xd2, 0x16, 0x2f};
    }

    /** A protocol-3.0 StartupMessage with the parameters in order; keys and values are sent as given (NULs too). */
    static byte[] startupPacket(Map<String, String> parameters) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes(new byte[] {0, 3, 0, 0});
        parameters.forEach((key, value) -> {
            body.writeBytes(key.getBytes(StandardCharsets.UTF_8));
            body.write(0);
            body.writeBytes(value.getBytes(StandardCharsets.UTF_8));
            body.write(0);
        });
        body.write(0);
        return withLength(body.toByteArray());
    }

    /** A frontend message with a type byte ('p' for a password or SASL message). */
    static byte[] typed(char type, byte[] body) {
        byte[] out = new byte[5 + body.length];
        out[0] = (byte) type;
        int length = body.length + 4;
        out[1] = (byte) (length >>> 24);
        out[2] = (byte) (length >>> 16);
        out[3] = (byte) (length >>> 8);
        out[4] = (byte) length;
        System.arraycopy(body, 0, out, 5, body.length);
        return out;
    }

    private static byte[] withLength(byte[] body) {
        byte[] out = new byte[4 + body.length];
        int length = out.length;
        out[0] = (byte) (length >>> 24);
        out[1] = (byte) (length >>> 16);
        out[2] = (byte) (length >>> 8);
        out[3] = (byte) length;
        System.arraycopy(body, 0, out, 4, body.length);
        return out;
    }

    /** A readable rendering of a backend message for assertion messages. */
    static String describe(byte[] message) {
        if (message.length == 0) {
            return "(closed)";
        }
        String text = new String(message, StandardCharsets.ISO_8859_1).replaceAll("[^\\x20-\\x7e]", ".");
        return (char) message[0] + " " + Arrays.toString(Arrays.copyOf(message, Math.min(message.length, 16))) + " "
                + text;
    }
}
