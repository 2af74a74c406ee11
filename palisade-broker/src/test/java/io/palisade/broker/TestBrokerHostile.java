package io.palisade.broker;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingPostgres;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * What an attacker gets from the broker (nothing) and what it costs the platform (bounded): logins are checked on the
 * host before anything is resolved, woken or read; startup parameters are whitelisted; pre-login WebSocket sessions
 * have a deadline and small frames; requests and sessions are capped; one tenant's huge value is refused after its
 * length header.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestBrokerHostile {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TestingPostgres postgres;
    private TestingBroker broker;
    private HttpClient http;

    @BeforeAll
    void start() {
        postgres = new TestingPostgres();
        broker = new TestingBroker(postgres, BrokerConfig.defaults());
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    }

    @AfterAll
    void stop() {
        if (broker != null) {
            broker.close();
        }
        if (postgres != null) {
            postgres.close();
        }
    }

    private HttpResponse<String> post(TestingBroker target, String connectionString, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(target.baseUrl() + "/sql"))
                .timeout(Duration.ofSeconds(30))
                .header("Neon-Connection-String", connectionString)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private String connectionString(String databaseId, String user, String password, String query) {
        return "postgresql://" + user + ":" + password + "@" + databaseId + ".db.localhost/app" + query;
    }

    private URI ws(TestingBroker target, String databaseId) {
        return URI.create("ws://127.0.0.1:" + target.port() + "/v2?address=" + databaseId + ".db.localhost:5432");
    }

    @Test
    void wrongPasswordAndUnknownIdGetTheSameAnswerAndWakeNothing() throws Exception {
        // a broker of its own: no connections of the database yet, as after a suspend
        try (TestingBroker broker = new TestingBroker(postgres, BrokerConfig.defaults())) {
            refusedAlike(broker);
        }
    }

    private void refusedAlike(TestingBroker broker) throws Exception {
        String password = postgres.credentials().password();
        int resolves = broker.resolves.get();
        String body = "{\"query\":\"SELECT 1\"}";
        HttpResponse<String> wrong = post(broker, connectionString(TestingBroker.DATABASE_ID, "app", "nope", ""), body);
        HttpResponse<String> unknown = post(broker, connectionString("db-nosuchdb", "app", password, ""), body);
        HttpResponse<String> otherRole = post(broker, connectionString(TestingBroker.DATABASE_ID, "postgres",
                password, ""), body);
        assertThat(wrong.statusCode()).isEqualTo(400);
        assertThat(unknown.statusCode()).isEqualTo(wrong.statusCode());
        assertThat(unknown.body()).isEqualTo(wrong.body());
        assertThat(JSON.readTree(wrong.body()).get("code").asText()).isEmpty();
        assertThat(otherRole.statusCode()).isEqualTo(400);
        assertThat(otherRole.body()).contains("password authentication failed for user 'postgres'");
        // over /v2 too
        WsPeer wrongWs = new WsPeer(http, ws(broker, TestingBroker.DATABASE_ID));
        wrongWs.send(WsPeer.concat(WsPeer.startup("app", "app"), WsPeer.passwordMessage("nope")));
        WsPeer unknownWs = new WsPeer(http, ws(broker, "db-nosuchdb"));
        unknownWs.send(WsPeer.concat(WsPeer.startup("app", "app"), WsPeer.passwordMessage(password)));
        assertThat(wrongWs.awaitMessage('E')).isEqualTo(unknownWs.awaitMessage('E'));
        // nothing was resolved (which would wake a suspended database)
        assertThat(broker.resolves.get()).isEqualTo(resolves);
        // the owner still gets in
        assertThat(post(broker, broker.connectionString(), body).statusCode()).isEqualTo(200);
        assertThat(broker.resolves.get()).isGreaterThan(resolves);
    }

    @Test
    void startupParametersAreWhitelistedBeforeTheLoginIsLookedUp() throws Exception {
        String password = postgres.credentials().password();
        int resolves = broker.resolves.get();
        String body = "{\"query\":\"SELECT 1\"}";
        for (String attack : List.of("?replication=database", "?options=-c%20log_connections%3Don",
                "?sslmode=require&work_mem=1")) {
            HttpResponse<String> known = post(broker, connectionString(TestingBroker.DATABASE_ID, "app", password,
                    attack), body);
            HttpResponse<String> unknown = post(broker, connectionString("db-nosuchdb", "app", password, attack),
                    body);
            assertThat(known.statusCode()).as(attack).isEqualTo(400);
            assertThat(known.body()).as(attack).isEqualTo(unknown.body()).contains("unsupported startup parameter");
        }
        // NUL bytes from URL-decoding would inject further startup parameters
        String injected = "app%00replication%00database";
        HttpResponse<String> known = post(broker, connectionString(TestingBroker.DATABASE_ID, injected, password, ""),
                body);
        HttpResponse<String> unknown = post(broker, connectionString("db-nosuchdb", injected, password, ""), body);
        assertThat(known.statusCode()).isEqualTo(400);
        assertThat(known.body()).isEqualTo(unknown.body()).contains("NUL");
        WsPeer knownWs = new WsPeer(http, ws(broker, TestingBroker.DATABASE_ID));
        knownWs.send(WsPeer.concat(WsPeer.startup("app", "app", "replication", "true"),
                WsPeer.passwordMessage(password)));
        WsPeer unknownWs = new WsPeer(http, ws(broker, "db-nosuchdb"));
        unknownWs.send(WsPeer.concat(WsPeer.startup("app", "app", "replication", "true"),
                WsPeer.passwordMessage(password)));
        byte[] refusal = knownWs.awaitMessage('E');
        assertThat(refusal).isEqualTo(unknownWs.awaitMessage('E'));
        assertThat(new String(refusal, StandardCharsets.UTF_8)).contains("0A000").contains("replication");
        assertThat(broker.resolves.get()).isEqualTo(resolves);
        // routing hints and harmless settings are fine
        assertThat(post(broker, connectionString(TestingBroker.DATABASE_ID, "app", password,
                "?sslmode=require&options=endpoint%3D" + TestingBroker.DATABASE_ID), body).statusCode()).isEqualTo(200);
        WsPeer fine = new WsPeer(http, ws(broker, TestingBroker.DATABASE_ID));
        fine.send(WsPeer.concat(WsPeer.startup("app", "app", "application_name", "hostile-test", "TimeZone", "UTC"),
                WsPeer.passwordMessage(password), WsPeer.query("SELECT current_setting('application_name')")));
        assertThat(new String(fine.awaitMessage('D'), StandardCharsets.UTF_8)).contains("hostile-test");
        fine.socket.sendClose(1000, "done").join();
    }

    @Test
    void unauthenticatedBodyIsNeverRead() throws Exception {
        int resolves = broker.resolves.get();
        for (String password : List.of("nope", postgres.credentials().password())) {
            boolean authenticated = !password.equals("nope");
            long length = authenticated ? BrokerConfig.DEFAULT_MAX_REQUEST_BYTES + 1 : 10L * 1024 * 1024;
            try (Socket socket = new Socket("127.0.0.1", broker.port())) {
                socket.setSoTimeout(10_000);
                OutputStream out = socket.getOutputStream();
                // headers only: the answer must come without the body ever being sent
                out.write(("POST /sql HTTP/1.1\r\nHost: 127.0.0.1\r\nNeon-Connection-String: "
                        + connectionString(TestingBroker.DATABASE_ID, "app", password, "")
                        + "\r\nContent-Type: application/json\r\nContent-Length: " + length + "\r\n\r\n{\"query\":")
                        .getBytes(StandardCharsets.UTF_8));
                out.flush();
                String status = readStatusLine(socket.getInputStream());
                assertThat(status).as(password).isEqualTo(authenticated ? "HTTP/1.1 413 Payload Too Large"
                        : "HTTP/1.1 400 Bad Request");
            }
        }
        assertThat(broker.resolves.get()).isEqualTo(resolves);
    }

    private static String readStatusLine(InputStream in) throws Exception {
        StringBuilder line = new StringBuilder();
        int b;
        while ((b = in.read()) >= 0 && b != '\n') {
            if (b != '\r') {
                line.append((char) b);
            }
        }
        return line.toString();
    }

    @Test
    void aHugeValueIsRefusedAfterItsLengthHeader() throws Exception {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        BrokerConfig config = BrokerConfig.defaults().withMaxResponseBytes(64 * 1024);
        try (TestingBroker small = new TestingBroker(postgres, config)) {
            assertThat(post(small, small.connectionString(), "{\"query\":\"SELECT 1\"}").statusCode()).isEqualTo(200);
            long before = threads.getTotalThreadAllocatedBytes();
            long started = System.nanoTime();
            HttpResponse<String> huge = post(small, small.connectionString(),
                    "{\"query\":\"SELECT repeat('x', 100000000)\"}");
            long allocated = threads.getTotalThreadAllocatedBytes() - before;
            assertThat(huge.statusCode()).as(huge.body()).isEqualTo(507);
            assertThat(JSON.readTree(huge.body()).get("message").asText())
                    .isEqualTo("response is too large (max is 65536 bytes)");
            // the broker read the DataRow's header, not its 100 MB (the whole JVM, test client included)
            assertThat(allocated).as("bytes allocated while refusing").isLessThan(16L * 1024 * 1024);
            assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(10));
            // many rows that add up past the budget: the same clean answer, and the tenant goes on working
            HttpResponse<String> many = post(small, small.connectionString(),
                    "{\"query\":\"SELECT repeat('y', 1000) FROM generate_series(1, 1000)\"}");
            assertThat(many.statusCode()).isEqualTo(507);
            HttpResponse<String> after = post(small, small.connectionString(), "{\"query\":\"SELECT 2 AS n\"}");
            assertThat(after.statusCode()).isEqualTo(200);
            assertThat(small.broker.openConnections(TestingBroker.DATABASE_ID)).isLessThanOrEqualTo(1);
        }
    }

    @Test
    void bodiesOfManyTinyValuesAreRefused() throws Exception {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        String ones = String.join(",", java.util.Collections.nCopies(200_000, "1"));
        long before = threads.getTotalThreadAllocatedBytes();
        HttpResponse<String> params = post(broker, broker.connectionString(),
                "{\"query\":\"SELECT 1\",\"params\":[" + ones + "]}");
        assertThat(params.statusCode()).isEqualTo(400);
        assertThat(params.body()).contains("more than 65535 parameters in one query");
        String queries = String.join(",", java.util.Collections.nCopies(100_001, "{\"query\":\"\"}"));
        HttpResponse<String> batch = post(broker, broker.connectionString(), "{\"queries\":[" + queries + "]}");
        assertThat(batch.statusCode()).isEqualTo(400);
        assertThat(batch.body()).contains("more than 100000 queries and parameters");
        HttpResponse<String> panda = http.send(HttpRequest.newBuilder(
                        URI.create(broker.baseUrl() + "/v1/databases/" + TestingBroker.DATABASE_ID
                                + "/proxy/v1/query"))
                .header("Authorization", "Bearer " + broker.token)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"sql\":\"SELECT 1\",\"params\":[" + ones + "]}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertThat(panda.statusCode()).isEqualTo(400);
        assertThat(panda.body()).contains("more than 100000 values");
        // 2.6 MB of bodies (and the test's own strings) did not become hundreds of MB of trees
        assertThat(threads.getTotalThreadAllocatedBytes() - before).isLessThan(200L * 1024 * 1024);
        // an array parameter is one value, however many elements it has
        HttpResponse<String> array = post(broker, broker.connectionString(),
                "{\"query\":\"SELECT cardinality($1::int[])\",\"params\":[[" + ones + "]]}");
        assertThat(array.statusCode()).as(array.body()).isEqualTo(200);
        assertThat(array.body()).contains("200000");
    }

    @Test
    void webSocketLoginHasADeadlineAndSmallFrames() throws Exception {
        BrokerConfig config = BrokerConfig.defaults().withLogin(Duration.ofSeconds(1), 4096);
        try (TestingBroker tight = new TestingBroker(postgres, config)) {
            long started = System.nanoTime();
            WsPeer idle = new WsPeer(http, ws(tight, TestingBroker.DATABASE_ID));
            // slowloris: half a startup packet, then nothing
            idle.send(new byte[] {0, 0, 0});
            Integer code = idle.closed.get(10, TimeUnit.SECONDS);
            assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(5));
            assertThat(code).isNotNull();
            assertThat(idle.received()).isEmpty();
            WsPeer big = new WsPeer(http, ws(tight, TestingBroker.DATABASE_ID));
            big.socket.sendBinary(java.nio.ByteBuffer.wrap(new byte[8192]), true);
            assertThat(big.closed.get(10, TimeUnit.SECONDS)).isEqualTo(1009);
            awaitNoSessions(tight);
            // a logged-in session keeps its connection past the deadline, and may send big messages
            WsPeer owner = new WsPeer(http, ws(tight, TestingBroker.DATABASE_ID));
            owner.send(WsPeer.concat(WsPeer.startup("app", "app"),
                    WsPeer.passwordMessage(postgres.credentials().password())));
            owner.awaitMessage('Z');
            Thread.sleep(1500);
            owner.send(WsPeer.query("SELECT length('" + "z".repeat(100_000) + "')"));
            assertThat(new String(owner.awaitMessage('D'), StandardCharsets.UTF_8)).contains("100000");
            assertThat(owner.closed).isNotDone();
            owner.socket.sendClose(1000, "done").join();
        }
    }

    @Test
    void sessionsAndRequestsAreCapped() throws Exception {
        String password = postgres.credentials().password();
        // the stranger below never logs in: a login deadline far beyond the test's run keeps it counted on a slow host
        // (with the default 10 s it was closed mid-test once and freed the slot the test expects to be taken)
        BrokerConfig config = BrokerConfig.defaults().withWebSocketSessions(3, 1).withConcurrentRequests(100, 1)
                .withLogin(Duration.ofMinutes(5), 64 * 1024);
        try (TestingBroker tight = new TestingBroker(postgres, config)) {
            // strangers without the password do not use up the database's share
            WsPeer stranger = new WsPeer(http, ws(tight, TestingBroker.DATABASE_ID));
            WsPeer owner = new WsPeer(http, ws(tight, TestingBroker.DATABASE_ID));
            owner.send(WsPeer.concat(WsPeer.startup("app", "app"), WsPeer.passwordMessage(password)));
            owner.awaitMessage('Z');
            WsPeer second = new WsPeer(http, ws(tight, TestingBroker.DATABASE_ID));
            second.send(WsPeer.concat(WsPeer.startup("app", "app"), WsPeer.passwordMessage(password)));
            assertThat(new String(second.awaitMessage('E'), StandardCharsets.UTF_8)).contains("53300");
            second.closed.get(10, TimeUnit.SECONDS);
            awaitSessions(tight, 2); // the refused session is released on the server too (after the client saw it)
            // the total: stranger + owner + one more; the next is refused before anything is read
            WsPeer third = new WsPeer(http, ws(tight, "db-nosuchdb"));
            // the client sees the upgrade before the broker counts the session: without this wait the fourth could be
            // counted first and the third refused in its place (seen once in CI)
            awaitSessions(tight, 3);
            WsPeer fourth = new WsPeer(http, ws(tight, "db-nosuchdb"));
            assertThat(fourth.closed.get(10, TimeUnit.SECONDS)).isEqualTo(1013);
            stranger.socket.abort();
            third.socket.abort();
            owner.socket.sendClose(1000, "done").join();
            awaitNoSessions(tight);

            // pending logins per client address
            // "a" waits through two logins: no login deadline mid-test
            BrokerConfig twoPending = BrokerConfig.defaults().withLoginsPerAddress(2)
                    .withLogin(Duration.ofMinutes(5), BrokerConfig.defaults().maxLoginMessageBytes());
            try (TestingBroker perAddress = new TestingBroker(postgres, twoPending)) {
                WsPeer a = new WsPeer(http, ws(perAddress, "db-nosuchdb"));
                WsPeer b = new WsPeer(http, ws(perAddress, TestingBroker.DATABASE_ID));
                awaitSessions(perAddress, 2);
                WsPeer c = new WsPeer(http, ws(perAddress, TestingBroker.DATABASE_ID));
                assertThat(c.closed.get(10, TimeUnit.SECONDS)).isEqualTo(1013);
                // a login frees its place
                b.send(WsPeer.concat(WsPeer.startup("app", "app"), WsPeer.passwordMessage(password)));
                b.awaitMessage('Z');
                WsPeer d = new WsPeer(http, ws(perAddress, TestingBroker.DATABASE_ID));
                d.send(WsPeer.concat(WsPeer.startup("app", "app"), WsPeer.passwordMessage(password)));
                d.awaitMessage('Z');
                assertThat(a.closed).isNotDone();
                a.socket.abort();
                b.socket.sendClose(1000, "done").join();
                d.socket.sendClose(1000, "done").join();
                awaitNoSessions(perAddress);
            }

            // one request of the database at a time: a second one concurrently is refused, a stranger's is not counted
            CompletableFuture<HttpResponse<String>> slow = CompletableFuture.supplyAsync(() -> {
                try {
                    return post(tight, tight.connectionString(), "{\"query\":\"SELECT pg_sleep(2)\"}");
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(10))
                    .until(() -> tight.broker.requests.of(TestingBroker.DATABASE_ID) == 1);
            HttpResponse<String> refused = post(tight, tight.connectionString(), "{\"query\":\"SELECT 1\"}");
            assertThat(refused.statusCode()).isEqualTo(429);
            HttpResponse<String> strangerRequest = post(tight, connectionString(TestingBroker.DATABASE_ID, "app",
                    "nope", ""), "{\"query\":\"SELECT 1\"}");
            assertThat(strangerRequest.statusCode()).isEqualTo(400);
            assertThat(slow.get(30, TimeUnit.SECONDS).statusCode()).isEqualTo(200);
            assertThat(post(tight, tight.connectionString(), "{\"query\":\"SELECT 1\"}").statusCode()).isEqualTo(200);
        }
    }

    @Test
    void aVerifierWithTenMillionIterationsIsRefusedQuickly() throws Exception {
        SecureRandom random = new SecureRandom();
        byte[] salt = new byte[16];
        byte[] storedKey = new byte[32];
        byte[] serverKey = new byte[32];
        random.nextBytes(salt);
        random.nextBytes(storedKey);
        random.nextBytes(serverKey);
        Base64.Encoder b64 = Base64.getEncoder();
        String verifier = "SCRAM-SHA-256$10000000:" + b64.encodeToString(salt) + "$" + b64.encodeToString(storedKey)
                + ":" + b64.encodeToString(serverKey);
        try (Connection c = postgres.connectAsAdmin(); Statement s = c.createStatement()) {
            s.execute("CREATE ROLE slowhash LOGIN PASSWORD '" + verifier + "'");
            s.execute("GRANT CONNECT ON DATABASE app TO slowhash");
        }
        // the tenant's stored login is this role: the host lets it through, the server's verifier is hostile
        TenantCredentials login = new TenantCredentials("slowhash", "app", "slow-secret");
        try (TestingBroker hostile = new TestingBroker(postgres, BrokerConfig.defaults(), login)) {
            long started = System.nanoTime();
            HttpResponse<String> response = post(hostile, connectionString(TestingBroker.DATABASE_ID, "slowhash",
                    "slow-secret", ""), "{\"query\":\"SELECT 1\"}");
            assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(3));
            assertThat(response.statusCode()).isGreaterThanOrEqualTo(400);
            JsonNode body = JSON.readTree(response.body());
            assertThat(body.get("message").asText()).contains("10000000 SCRAM iterations");
            started = System.nanoTime();
            WsPeer session = new WsPeer(http, ws(hostile, TestingBroker.DATABASE_ID));
            session.send(WsPeer.concat(WsPeer.startup("slowhash", "app"), WsPeer.passwordMessage("slow-secret")));
            assertThat(new String(session.awaitMessage('E'), StandardCharsets.UTF_8)).contains("SCRAM iterations");
            assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(3));
        }
    }

    private static void awaitNoSessions(TestingBroker target) {
        awaitSessions(target, 0);
    }

    private static void awaitSessions(TestingBroker target, int count) {
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10))
                .untilAsserted(() -> assertThat(target.broker.openWebSocketSessions()).isEqualTo(count));
    }
}
