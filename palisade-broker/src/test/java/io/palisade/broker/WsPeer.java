package io.palisade.broker;

import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * A java.net.http WebSocket client of the broker's {@code /v2} that collects the PostgreSQL byte stream the broker
 * sends, plus builders for the frontend messages the Neon driver sends. Thread-safe.
 */
final class WsPeer implements WebSocket.Listener {
    private final ByteArrayOutputStream received = new ByteArrayOutputStream();
    private int parsed;
    /** Completes with the close status code when the broker closes the session (or -1 on an error). */
    final CompletableFuture<Integer> closed = new CompletableFuture<>();
    final WebSocket socket;

    WsPeer(HttpClient http, URI uri) {
        this.socket = http.newWebSocketBuilder().buildAsync(uri, this).join();
    }

    void send(byte[] bytes) {
        socket.sendBinary(ByteBuffer.wrap(bytes), true).join();
    }

    @Override
    public CompletionStage<?> onBinary(WebSocket webSocket, ByteBuffer data, boolean last) {
        synchronized (received) {
            byte[] bytes = new byte[data.remaining()];
            data.get(bytes);
            received.writeBytes(bytes);
            received.notifyAll();
        }
        webSocket.request(1);
        return null;
    }

    @Override
    public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
        closed.complete(statusCode);
        return null;
    }

    @Override
    public void onError(WebSocket webSocket, Throwable error) {
        closed.complete(-1);
    }

    /** Everything received so far. */
    byte[] received() {
        synchronized (received) {
            return received.toByteArray();
        }
    }

    /** The next whole message of this type (type byte, length, body), skipping others; waits up to 10 s. */
    byte[] awaitMessage(char type) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        synchronized (received) {
            while (true) {
                byte[] all = received.toByteArray();
                while (all.length - parsed >= 5) {
                    int length = ByteBuffer.wrap(all, parsed + 1, 4).getInt();
                    if (all.length - parsed < length + 1) {
                        break;
                    }
                    byte[] message = Arrays.copyOfRange(all, parsed, parsed + length + 1);
                    parsed += length + 1;
                    if (message[0] == type) {
                        return message;
                    }
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AssertionError("no '" + type + "' message from the broker; got " + all.length
                            + " bytes");
                }
                received.wait(Math.max(1, left / 1_000_000));
            }
        }
    }

    static byte[] startup(String user, String database, String... extra) {
        java.util.Map<String, String> parameters = new java.util.LinkedHashMap<>();
        parameters.put("user", user);
        parameters.put("database", database);
        for (int i = 0; i < extra.length; i += 2) {
            parameters.put(extra[i], extra[i + 1]);
        }
        return io.palisade.pgwire.PgMessages.startupMessage(parameters);
    }

    static byte[] passwordMessage(String password) {
        byte[] value = (password + "\0").getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(5 + value.length).put((byte) 'p').putInt(4 + value.length).put(value).array();
    }

    static byte[] query(String sql) {
        byte[] value = (sql + "\0").getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(5 + value.length).put((byte) 'Q').putInt(4 + value.length).put(value).array();
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }
}
