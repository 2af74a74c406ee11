package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link HostRelay} on loopback addresses only (no root, no VM): bytes both ways with half-close, peers other than the
 * allowed one refused, the connection limit, and close ending every relayed connection. 127.0.0.2 plays the VM's
 * namespace address.
 */
class TestHostRelay {
    private static final String PEER = "127.0.0.2";

    private ServerSocket echo;
    private Thread echoThread;

    @BeforeEach
    void startEchoServer() throws IOException {
        echo = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        echoThread = Thread.ofVirtual().name("test-echo").start(() -> {
            while (!echo.isClosed()) {
                try {
                    Socket socket = echo.accept();
                    Thread.ofVirtual().name("test-echo-connection").start(() -> {
                        try (socket) {
                            socket.getInputStream().transferTo(socket.getOutputStream());
                        } catch (IOException ignored) {
                            // closed by the relay
                        }
                    });
                } catch (IOException e) {
                    return;
                }
            }
        });
    }

    @AfterEach
    void stopEchoServer() throws Exception {
        echo.close();
        echoThread.join(Duration.ofSeconds(5));
    }

    private Endpoint echoEndpoint() {
        return new Endpoint("127.0.0.1", echo.getLocalPort());
    }

    private static Socket connectFrom(String local, HostRelay relay) throws IOException {
        Socket socket = new Socket();
        socket.bind(new InetSocketAddress(local, 0));
        socket.connect(new InetSocketAddress("127.0.0.1", relay.port()), 5000);
        socket.setSoTimeout(5000);
        return socket;
    }

    @Test
    void relaysBothWaysUntilEachSideIsDone() throws Exception {
        try (HostRelay relay = HostRelay.open("test-relay", "127.0.0.1", PEER, echoEndpoint(), 4);
                Socket client = connectFrom(PEER, relay)) {
            client.getOutputStream().write("hello through the relay".getBytes(StandardCharsets.UTF_8));
            client.shutdownOutput(); // the echo server sees end of stream, echoes, and closes
            assertThat(new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8))
                    .isEqualTo("hello through the relay");
            await().atMost(Duration.ofSeconds(5)).until(() -> relay.openConnections() == 0);
        }
    }

    @Test
    void refusesOtherPeersAndConnectionsBeyondTheLimit() throws Exception {
        try (HostRelay relay = HostRelay.open("test-relay", "127.0.0.1", PEER, echoEndpoint(), 2)) {
            try (Socket stranger = connectFrom("127.0.0.3", relay)) {
                assertThat(readOrReset(stranger.getInputStream())).as("closed at once").isEqualTo(-1);
            }
            try (Socket first = connectFrom(PEER, relay); Socket second = connectFrom(PEER, relay)) {
                await().atMost(Duration.ofSeconds(5)).until(() -> relay.openConnections() == 2);
                try (Socket third = connectFrom(PEER, relay)) {
                    assertThat(readOrReset(third.getInputStream())).as("over the limit").isEqualTo(-1);
                }
                first.getOutputStream().write(1);
                assertThat(first.getInputStream().read()).as("the first two still work").isEqualTo(1);
                second.getOutputStream().write(2);
                assertThat(second.getInputStream().read()).isEqualTo(2);
            }
        }
    }

    @Test
    void closeEndsEveryConnectionAndStopsListening() throws Exception {
        HostRelay relay = HostRelay.open("test-relay", "127.0.0.1", PEER, echoEndpoint(), 4);
        int port = relay.port();
        try (Socket client = connectFrom(PEER, relay)) {
            client.getOutputStream().write(7);
            assertThat(client.getInputStream().read()).isEqualTo(7);
            relay.close();
            relay.close(); // idempotent
            assertThat(readOrReset(client.getInputStream())).isEqualTo(-1);
        }
        assertThatThrownBy(() -> new Socket("127.0.0.1", port).close()).isInstanceOf(java.net.ConnectException.class);
    }

    @Test
    void relaysOnlyToLoopback() {
        assertThatThrownBy(() -> HostRelay.open("test-relay", "127.0.0.1", PEER, new Endpoint("192.0.2.1", 5432), 4))
                .isInstanceOfSatisfying(PalisadeException.class,
                        e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.INVALID_REQUEST))
                .hasMessageContaining("loopback");
    }

    /** -1 for end of stream or a reset (both mean the relay closed the connection). */
    private static int readOrReset(InputStream in) throws IOException {
        try {
            return in.read();
        } catch (SocketException e) {
            return -1;
        }
    }
}
