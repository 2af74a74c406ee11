package io.palisade.server.hostile;

import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/**
 * A WebSocket to the broker's {@code /v2} speaking the PostgreSQL protocol in binary frames, as
 * {@code @neondatabase/serverless} does: enough to try a login, or to open a socket and never log in. Records when the
 * server closed it. Thread-safe (the JDK client's listener thread writes, test threads read under the monitor).
 */
final class BrokerWebSocket implements AutoCloseable {
    private final WebSocket socket;
    private final ByteArrayOutputStream received = new ByteArrayOutputStream();
    private final CompletableFuture<Long> closedAt = new CompletableFuture<>();

    private BrokerWebSocket(HttpClient http, String apiUrl, String hostname) {
        URI uri = URI.create(apiUrl.replaceFirst("^http", "ws") + "/v2?address=" + hostname + ":5432");
        this.socket = http.newWebSocketBuilder().connectTimeout(Duration.ofSeconds(10))
                .buildAsync(uri, new Listener()).orTimeout(20, TimeUnit.SECONDS).join();
    }

    static BrokerWebSocket open(HttpClient http, String apiUrl, String hostname) {
        return new BrokerWebSocket(http, apiUrl, hostname);
    }

    /**
     * Sends a StartupMessage and a cleartext password as the driver does; returns the SQLSTATE of the ErrorResponse the
     * broker answered, or {@code "ok"} for AuthenticationOk, or {@code "closed"}.
     */
    String login(String user, String database, String password, Duration timeout) {
        send(RawPgClient.startupPacket(Map.of("user", user, "database", database)));
        byte[] secret = (password + "\0").getBytes(StandardCharsets.UTF_8);
        send(RawPgClient.typed('p', secret));
        long deadline = System.nanoTime() + timeout.toNanos();
        int at = 0;
        while (System.nanoTime() < deadline) {
            byte[] bytes;
            synchronized (received) {
                bytes = received.toByteArray();
            }
            while (bytes.length >= at + 5) {
                int length = ((bytes[at + 1] & 0xff) << 24) | ((bytes[at + 2] & 0xff) << 16)
                        | ((bytes[at + 3] & 0xff) << 8) | (bytes[at + 4] & 0xff);
                if (bytes.length < at + 1 + length) {
                    break;
                }
                char type = (char) bytes[at];
                if (type == 'E') {
                    return sqlState(bytes, at + 5, at + 1 + length);
                }
                if (type == 'R' && length == 8 && bytes[at + 8] == 0 && bytes[at + 5] == 0 && bytes[at + 6] == 0
                        && bytes[at + 7] == 0) {
                    return "ok";
                }
                at += 1 + length;
            }
            if (closedAt.isDone()) {
                return "closed";
            }
            io.palisade.host.Processes.sleep(Duration.ofMillis(20));
        }
        throw new AssertionError("no answer to a login on /v2 within " + timeout);
    }

    void send(byte[] bytes) {
        socket.sendBinary(ByteBuffer.wrap(bytes), true).orTimeout(10, TimeUnit.SECONDS).join();
    }

    /** Whether the server closed (or broke) the socket within {@code timeout}. */
    boolean awaitClosed(Duration timeout) {
        try {
            closedAt.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            return true;
        } catch (java.util.concurrent.TimeoutException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } catch (java.util.concurrent.ExecutionException e) {
            return true;
        }
    }

    private static String sqlState(byte[] bytes, int from, int to) {
        int at = from;
        while (at < to && bytes[at] != 0) {
            char field = (char) bytes[at++];
            int end = at;
            while (end < to && bytes[end] != 0) {
                end++;
            }
            if (field == 'C') {
                return new String(bytes, at, end - at, StandardCharsets.UTF_8);
            }
            at = end + 1;
        }
        return "E?";
    }

    @Override
    public void close() {
        socket.abort();
    }

    private final class Listener implements WebSocket.Listener {
        @Override
        public CompletionStage<?> onBinary(WebSocket webSocket, ByteBuffer data, boolean last) {
            byte[] bytes = new byte[data.remaining()];
            data.get(bytes);
            synchronized (received) {
                received.writeBytes(bytes);
            }
            webSocket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            webSocket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
            closedAt.complete(System.nanoTime());
            return null;
        }

        @Override
        public void onError(WebSocket webSocket, Throwable error) {
            closedAt.complete(System.nanoTime());
        }
    }
}
