package io.palisade.api;

import static java.nio.charset.StandardCharsets.US_ASCII;
import static org.assertj.core.api.Assertions.assertThat;

import io.javalin.Javalin;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A request head dribbled byte by byte is cut off after the deadline; keep-alive clients that idle are not. */
class TestRequestHeadDeadline {
    private Javalin app;
    private RequestHeadDeadline deadline;

    @BeforeEach
    void start() {
        app = Javalin.create(config -> {
            config.showJavalinBanner = false;
            config.jetty.defaultHost = "127.0.0.1";
            config.jetty.defaultPort = 0;
        }).get("/", ctx -> ctx.result("ok")).post("/", ctx -> ctx.result("read " + ctx.body().length())).start();
        deadline = new RequestHeadDeadline(Duration.ofSeconds(2), Duration.ofSeconds(5));
        deadline.install(app.jettyServer().server().getConnectors());
    }

    @AfterEach
    void stop() {
        app.stop();
        deadline.close();
    }

    @Test
    void dribbledHeadersAreCutOff() throws Exception {
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), app.port())) {
            socket.setSoTimeout(200);
            OutputStream out = socket.getOutputStream();
            out.write("GET / HTTP/1.1\r\nHost: x\r\n".getBytes(US_ASCII));
            long start = System.nanoTime();
            boolean closed = false;
            for (int i = 0; i < 40 && !closed; i++) {
                try {
                    out.write('X');
                    out.flush();
                    closed = socket.getInputStream().read() == -1;
                } catch (SocketTimeoutException e) {
                    // still open
                } catch (java.io.IOException e) {
                    closed = true;
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            assertThat(closed).as("closed while dribbling").isTrue();
            assertThat(seconds).as("seconds until closed").isBetween(1.5, 6.0);
        }
    }

    @Test
    void aBodyThatStartsFastThenDribblesIsCutOff() throws Exception {
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), app.port())) {
            socket.setSoTimeout(200);
            OutputStream out = socket.getOutputStream();
            out.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 200000\r\n\r\n"
                    .getBytes(US_ASCII));
            Thread.sleep(1500); // the head is in and seen
            out.write(new byte[70_000]);
            long start = System.nanoTime();
            boolean closed = false;
            for (int i = 0; i < 60 && !closed; i++) {
                try {
                    out.write('x');
                    out.flush();
                    int b = socket.getInputStream().read();
                    closed = true; // an answer (408) or EOF: either way the server gave up on the request
                } catch (SocketTimeoutException e) {
                    // still open
                } catch (java.io.IOException e) {
                    closed = true;
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            assertThat(closed).as("the dribbled body was given up on").isTrue();
            assertThat(seconds).isLessThan(12.0);
        }
    }

    @Test
    void idleKeepAliveAndPromptRequestsAreLeftAlone() throws Exception {
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), app.port())) {
            socket.setSoTimeout(5000);
            for (int i = 0; i < 2; i++) {
                socket.getOutputStream().write("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(US_ASCII));
                assertThat(readResponse(socket.getInputStream(), "ok")).startsWith("HTTP/1.1 200");
                Thread.sleep(3500); // longer than the deadline, idle
                // a small body, sent a moment after its head
                socket.getOutputStream().write(("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                        + "Content-Length: 40\r\n\r\n").getBytes(US_ASCII));
                Thread.sleep(300);
                socket.getOutputStream().write("x".repeat(40).getBytes(US_ASCII));
                assertThat(readResponse(socket.getInputStream(), "read 40")).startsWith("HTTP/1.1 200");
            }
        }
    }

    private static String readResponse(InputStream in, String body) throws Exception {
        StringBuilder text = new StringBuilder();
        while (!text.toString().endsWith(body)) {
            int b = in.read();
            if (b < 0) {
                break;
            }
            text.append((char) b);
        }
        return text.toString();
    }
}
