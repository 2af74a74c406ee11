package io.palisade.server.hostile;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Processes;
import io.palisade.server.hostile.HostileTenants.Tenant;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * Slowloris on the three public listeners: half-open TLS handshakes and startup packets dribbled a byte at a time on
 * the proxy, request headers that never end on the API, WebSockets on {@code /v2} that never log in. While each attack
 * runs the owner and a neighbour keep working; the server closes the attack's sockets within its deadline (about 10 s
 * for the proxy's and the broker's authentication, asserted with slack). Attackers connect from other loopback
 * addresses than the owner's 127.0.0.1 where the client allows it.
 */
class TestSlowloris extends AbstractHostileAttack {
    private static final Duration AUTH_BOUND = Duration.ofSeconds(20);
    /** Jetty's idle timeout (30 s) with slack: a request's headers must be complete by then. */
    private static final Duration HEADER_BOUND = Duration.ofSeconds(40);

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @Override
    protected String label() {
        return "slow";
    }

    @Test
    void proxyClosesHalfOpenHandshakesAndDribbledStartups() throws Exception {
        List<Supplier<Boolean>> closedChecks = new ArrayList<>();
        List<String> failures = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean attacking = new AtomicBoolean(true);
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Boolean>> closed = new ArrayList<>();
            for (int i = 0; i < 150; i++) {
                String source = "127.0.1." + (2 + i % 40);
                closed.add(threads.submit(() -> halfOpenHandshake(source)));
            }
            for (int i = 0; i < 30; i++) {
                String source = "127.0.1." + (100 + i % 10);
                closed.add(threads.submit(() -> dribbledStartup(source, attacking)));
            }
            try (var watch = new OwnersWatch(List.of(owner, neighbour), failures)) {
                List<String> open = new ArrayList<>();
                for (int i = 0; i < closed.size(); i++) {
                    if (!closed.get(i).get()) {
                        open.add("attack socket #" + i);
                    }
                }
                attacking.set(false);
                System.out.printf("proxy slowloris: %d of %d sockets still open after %s; owners answered %d times%n",
                        open.size(), closed.size(), AUTH_BOUND, watch.answers());
                assertThat(failures).as("the owner and the neighbour during the attack").isEmpty();
                assertThat(watch.answers()).isPositive();
                assertThat(open).as("proxy sockets not closed by the server within %s", AUTH_BOUND).isEmpty();
            }
        }
        HostileTenants.assertAnswers(owner);
        HostileTenants.assertAnswers(neighbour);
    }

    /** SSLRequest, 'S', then five bytes of a TLS record header and silence. True when the server closed in time. */
    private boolean halfOpenHandshake(String source) {
        try (RawPgClient client = RawPgClient.connect(source, tenants.proxyPort())) {
            client.sslRequest();
            client.write(new byte[] {0x16, 0x03, 0x01, 0x02, 0x00});
            return client.awaitClosed(AUTH_BOUND);
        } catch (IOException e) {
            return true; // refused: closed by the server
        }
    }

    /** TLS with the owner's SNI, then the owner's startup packet one byte every 300 ms. */
    private boolean dribbledStartup(String source, AtomicBoolean attacking) {
        try (RawPgClient client = RawPgClient.connect(source, tenants.proxyPort())) {
            client.startTls(owner.hostname(), tenants.caCertificate());
            byte[] startup = RawPgClient.startupPacket(Map.of("user", owner.username(), "database", owner.database(),
                    "application_name", "slowloris-".repeat(4)));
            Thread dribbler = Thread.ofVirtual().start(() -> {
                try {
                    for (int i = 0; i < startup.length && attacking.get(); i++) {
                        client.write(new byte[] {startup[i]});
                        Thread.sleep(300);
                    }
                } catch (IOException | InterruptedException e) {
                    // closed by the server
                }
            });
            boolean closed = client.awaitClosed(AUTH_BOUND);
            dribbler.interrupt();
            return closed;
        } catch (IOException e) {
            return true;
        }
    }

    @Test
    void apiClosesRequestsWhoseHeadersStopComing() throws Exception {
        apiSlowloris(false);
    }

    /**
     * Headers dribbled a byte a second never let Jetty's idle timeout fire: only a deadline for the whole request head
     * closes these (found by this suite; not one of the review's findings).
     */
    @Test
    void apiClosesRequestsWhoseHeadersAreDribbled() throws Exception {
        apiSlowloris(true);
    }

    private void apiSlowloris(boolean dribble) throws Exception {
        List<String> failures = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean attacking = new AtomicBoolean(true);
        int port = tenants.palisade().server().apiPort();
        String how = dribble ? "dribbling" : "idle";
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Boolean>> attacks = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                String source = "127.0.2." + (2 + i % 50);
                attacks.add(threads.submit(() -> slowHeaders(source, port, dribble, attacking)));
            }
            try (var watch = new OwnersWatch(List.of(owner, neighbour), failures)) {
                long open = count(attacks, false);
                attacking.set(false);
                System.out.printf("API slowloris: %d of %d %s sockets still open after %s; owners answered %d"
                        + " times%n", open, attacks.size(), how, HEADER_BOUND, watch.answers());
                assertThat(failures).as("the owner and the neighbour during the attack").isEmpty();
                assertThat(watch.answers()).isPositive();
                assertThat(open).as("API sockets with %s unfinished headers left open after %s", how, HEADER_BOUND)
                        .isZero();
            }
        }
    }

    /** A request line and a header, then nothing (or one header byte a second). True when the server closed. */
    private static boolean slowHeaders(String source, int port, boolean dribble, AtomicBoolean attacking) {
        try (Socket socket = new Socket()) {
            socket.bind(new InetSocketAddress(InetAddress.getByName(source), 0));
            socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 5_000);
            OutputStream out = socket.getOutputStream();
            InputStream in = socket.getInputStream();
            out.write("GET /v1/databases HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            long deadline = System.nanoTime() + HEADER_BOUND.toNanos();
            socket.setSoTimeout(1_000);
            while (System.nanoTime() < deadline) {
                try {
                    if (in.read() < 0) {
                        return true;
                    }
                    return true; // an answer (e.g. 408/431) before the headers ended
                } catch (SocketTimeoutException e) {
                    if (dribble && attacking.get()) {
                        out.write('a');
                        out.flush();
                    }
                }
            }
            return false;
        } catch (IOException e) {
            return true;
        }
    }

    @Test
    void brokerClosesWebSocketsThatNeverLogIn() throws Exception {
        List<String> failures = Collections.synchronizedList(new ArrayList<>());
        List<BrokerWebSocket> sockets = new ArrayList<>();
        try {
            for (int i = 0; i < 100; i++) {
                try {
                    sockets.add(BrokerWebSocket.open(http, tenants.palisade().apiUrl(), owner.hostname()));
                } catch (RuntimeException e) {
                    // refused (e.g. a session cap): the server answered
                }
            }
            long opened = System.nanoTime();
            try (var watch = new OwnersWatch(List.of(owner, neighbour), failures)) {
                long open = 0;
                for (BrokerWebSocket socket : sockets) {
                    Duration left = AUTH_BOUND.minus(Duration.ofNanos(System.nanoTime() - opened));
                    if (!socket.awaitClosed(left.isNegative() ? Duration.ZERO : left)) {
                        open++;
                    }
                }
                System.out.printf("/v2 slowloris: %d of %d WebSockets still open after %s; owners answered %d times%n",
                        open, sockets.size(), AUTH_BOUND, watch.answers());
                assertThat(failures).as("the owner and the neighbour during the attack").isEmpty();
                assertThat(open).as("/v2 sockets that never logged in left open after %s", AUTH_BOUND).isZero();
            }
        } finally {
            sockets.forEach(BrokerWebSocket::close);
        }
        try (BrokerWebSocket ws = BrokerWebSocket.open(http, tenants.palisade().apiUrl(), owner.hostname())) {
            assertThat(ws.login(owner.username(), owner.database(), owner.password(), Duration.ofSeconds(20)))
                    .as("the owner on /v2 after the attack").isEqualTo("ok");
        }
    }

    private static long count(List<Future<Boolean>> results, boolean value) throws Exception {
        long n = 0;
        for (Future<Boolean> result : results) {
            if (result.get() == value) {
                n++;
            }
        }
        return n;
    }

    /**
     * The owners keep using their databases while an attack runs: through the proxy and over {@code /sql}, every
     * 500 ms; each failure is recorded. Close stops it.
     */
    private final class OwnersWatch implements AutoCloseable {
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final java.util.concurrent.atomic.AtomicInteger answers =
                new java.util.concurrent.atomic.AtomicInteger();
        private final Thread thread;

        OwnersWatch(List<Tenant> owners, List<String> failures) {
            this.thread = Thread.ofPlatform().name("owners-watch").start(() -> {
                while (running.get()) {
                    for (Tenant tenant : owners) {
                        try {
                            HostileTenants.assertAnswers(tenant);
                            HttpResponse<String> sql = http.send(HttpRequest.newBuilder(
                                            URI.create(tenants.palisade().apiUrl() + "/sql"))
                                    .timeout(Duration.ofSeconds(15))
                                    .header("Neon-Connection-String",
                                            tenant.serverlessUrl(tenant.username(), tenant.password()))
                                    .POST(HttpRequest.BodyPublishers.ofString("{\"query\":\"select 1\",\"params\":[]}"))
                                    .build(), HttpResponse.BodyHandlers.ofString());
                            if (sql.statusCode() != 200) {
                                failures.add(tenant + " on /sql: " + sql.statusCode() + " " + sql.body());
                            }
                            answers.incrementAndGet();
                        } catch (AssertionError | IOException e) {
                            failures.add(tenant + ": " + e.getMessage());
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                    Processes.sleep(Duration.ofMillis(500));
                }
            });
        }

        int answers() {
            return answers.get();
        }

        @Override
        public void close() throws InterruptedException {
            running.set(false);
            thread.join(Duration.ofSeconds(60));
        }
    }
}
