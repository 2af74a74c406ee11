package io.palisade.vmm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A QMP (QEMU Machine Protocol) client on the VM's unix socket. Every call has a bound; events are skipped. Not
 * thread-safe: one caller at a time (the driver serialises calls per instance).
 */
public final class Qmp implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNode CLOSED = JSON.createObjectNode().put("closed", true);

    private final SocketChannel channel;
    private final BlockingQueue<JsonNode> messages = new LinkedBlockingQueue<>();
    private final Thread reader;
    private volatile boolean closed;

    private Qmp(SocketChannel channel, String name) {
        this.channel = channel;
        this.reader = Thread.ofVirtual().name("qmp-reader-" + name).start(this::readLoop);
    }

    /** Connects, reads the greeting and negotiates capabilities. */
    public static Qmp connect(Path socket, Duration timeout) {
        SocketChannel channel;
        try {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            channel.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "cannot connect to QMP at " + socket + ": " + e.getMessage(), e);
        }
        Qmp qmp = new Qmp(channel, socket.getParent().getFileName().toString());
        try {
            JsonNode greeting = qmp.next(timeout);
            if (!greeting.has("QMP")) {
                throw new PalisadeException(
                        ErrorCode.DRIVER_FAILURE, "unexpected QMP greeting on " + socket + ": " + greeting);
            }
            qmp.execute("qmp_capabilities", Map.of(), timeout);
            return qmp;
        } catch (RuntimeException e) {
            qmp.close();
            throw e;
        }
    }

    /** Runs a command and returns its {@code return} value; a QMP error becomes a PalisadeException. */
    public JsonNode execute(String command, Map<String, ?> arguments, Duration timeout) {
        ObjectNode request = JSON.createObjectNode().put("execute", command);
        if (!arguments.isEmpty()) {
            request.set("arguments", JSON.valueToTree(arguments));
        }
        try {
            byte[] bytes = (JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8);
            ByteBuffer buffer = ByteBuffer.wrap(bytes);
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "QMP " + command + " failed: " + e.getMessage(), e);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            JsonNode message = next(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())));
            if (message.has("event")) {
                continue;
            }
            if (message.has("error")) {
                throw new PalisadeException(
                        ErrorCode.DRIVER_FAILURE,
                        "QMP " + command + " failed: " + message.path("error").path("desc").asText(message.toString()));
            }
            if (message.has("return")) {
                return message.get("return");
            }
        }
    }

    private JsonNode next(Duration timeout) {
        try {
            JsonNode message = messages.poll(timeout.toNanos(), TimeUnit.NANOSECONDS);
            if (message == null) {
                throw new PalisadeException(
                        ErrorCode.TIMEOUT, "QMP did not answer within " + timeout.toMillis() + " ms");
            }
            if (message == CLOSED) {
                messages.offer(CLOSED);
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "QMP connection closed by QEMU");
            }
            return message;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while waiting for QMP", e);
        }
    }

    private void readLoop() {
        ByteBuffer buffer = ByteBuffer.allocate(8192);
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        try {
            while (!closed) {
                buffer.clear();
                int n = channel.read(buffer);
                if (n < 0) {
                    break;
                }
                for (int i = 0; i < n; i++) {
                    byte b = buffer.get(i);
                    if (b == '\n') {
                        String text = line.toString(StandardCharsets.UTF_8).strip();
                        line.reset();
                        if (!text.isEmpty()) {
                            try {
                                messages.offer(JSON.readTree(text));
                            } catch (IOException e) {
                                // not JSON: ignore the line
                            }
                        }
                    } else {
                        line.write(b);
                    }
                }
            }
        } catch (IOException e) {
            // closed
        } finally {
            messages.offer(CLOSED);
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            channel.close();
        } catch (IOException ignored) {
            // already gone
        }
        try {
            reader.join(Duration.ofSeconds(2));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
