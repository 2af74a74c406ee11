package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SniCompletionEvent;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.palisade.spi.Endpoint;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The handshake state machine on an {@link EmbeddedChannel}: the plaintext phase (SSLRequest, GSSENCRequest, direct
 * TLS, cancel, plaintext startup, truncated and oversized packets) and, with the TLS events fired by hand, the startup,
 * routing and mock-authentication phase. Databases resolve to nothing here (no sockets): the integration test covers
 * real backends.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestStartupHandshake {
    private static final String DOMAIN = "db.localhost";
    private Path workDir;
    private PostgresProxy proxy;
    private final List<String> resolved = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final List<String> looked = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final Map<String, TenantCredentials> logins = new java.util.concurrent.ConcurrentHashMap<>();

    @BeforeAll
    void setUp() {
        workDir = TestingDirectories.newWorkDir("proxy-unit");
        ProxyConfig config = ProxyConfig.defaults(DOMAIN, workDir.resolve("tls"))
                .withBind("127.0.0.1", 0)
                .withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(20), Duration.ofHours(1));
        proxy = new PostgresProxy(config, id -> {
            resolved.add(id);
            return CompletableFuture.completedFuture(Optional.<io.palisade.spi.Backend>empty());
        }, id -> {
            looked.add(id);
            return CompletableFuture.completedFuture(Optional.ofNullable(logins.get(id)));
        }, new SimpleMeterRegistry());
    }

    @AfterAll
    void tearDown() {
        proxy.close();
        TestingDirectories.deleteRecursively(workDir);
    }

    private EmbeddedChannel plaintextChannel() {
        ClientSession session = new ClientSession(proxy, null);
        EmbeddedChannel channel = new EmbeddedChannel(new StartupSniffer(session, 10_000), session);
        channel.freezeTime();
        return channel;
    }

    /** A channel past TLS: the TLS events are fired by hand, the bytes written are the decrypted stream. */
    private EmbeddedChannel tlsChannel(String sniHost) {
        ClientSession session = new ClientSession(proxy, null);
        EmbeddedChannel channel = new EmbeddedChannel(session);
        channel.freezeTime();
        if (sniHost != null) {
            channel.pipeline().fireUserEventTriggered(new SniCompletionEvent(sniHost));
        }
        channel.pipeline().fireUserEventTriggered(SslHandshakeCompletionEvent.SUCCESS);
        return channel;
    }

    private static void write(EmbeddedChannel channel, byte[]... parts) {
        for (byte[] part : parts) {
            channel.writeInbound(Unpooled.wrappedBuffer(part));
        }
        channel.runPendingTasks();
    }

    /** Lets the proof floor (a few ms after the credential lookup) pass on the channel's frozen clock. */
    private static void settle(EmbeddedChannel channel) {
        channel.advanceTimeBy(1, TimeUnit.SECONDS);
        channel.runScheduledPendingTasks();
    }

    /** Everything written to the client so far, split into messages (single-byte answers returned as type only). */
    private static List<RawPg.Message> outbound(EmbeddedChannel channel) {
        ByteBuf all = Unpooled.buffer();
        ByteBuf next;
        while ((next = channel.readOutbound()) != null) {
            all.writeBytes(next);
            next.release();
        }
        List<RawPg.Message> messages = new ArrayList<>();
        while (all.isReadable()) {
            char type = (char) all.readByte();
            if (!all.isReadable() || type == 'S' || type == 'N') {
                messages.add(new RawPg.Message(type, new byte[0]));
                continue;
            }
            int length = all.readInt();
            byte[] body = new byte[length - 4];
            all.readBytes(body);
            messages.add(new RawPg.Message(type, body));
        }
        return messages;
    }

    private static RawPg.Message onlyError(EmbeddedChannel channel) {
        List<RawPg.Message> messages = outbound(channel);
        assertThat(messages).hasSize(1);
        assertThat(messages.getFirst().type()).isEqualTo('E');
        assertThat(channel.isActive()).as("closed after the error").isFalse();
        assertThat(RawPg.errorField(messages.getFirst(), 'S')).isEqualTo("FATAL");
        return messages.getFirst();
    }

    private static byte[] startup(Map<String, String> parameters) {
        return RawPg.startup(3, 0, parameters);
    }

    private static Map<String, String> params(String... pairs) {
        Map<String, String> map = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            map.put(pairs[i], pairs[i + 1]);
        }
        return map;
    }

    // ---- plaintext phase ----

    @Test
    void sslRequestIsAnsweredAndTlsInstalled() {
        EmbeddedChannel channel = plaintextChannel();
        byte[] request = RawPg.sslRequest();
        // fragmented: one byte at a time
        for (byte b : request) {
            write(channel, new byte[] {b});
        }
        assertThat(outbound(channel)).extracting(RawPg.Message::type).containsExactly('S');
        assertThat(channel.pipeline().get(StartupSniffer.class)).isNull();
        assertThat(channel.pipeline().get("tls")).isInstanceOf(SniHandler.class);
        assertThat(channel.isActive()).isTrue();
        channel.finishAndReleaseAll();
    }

    @Test
    void bytesAfterSslRequestAreAProtocolViolation() {
        EmbeddedChannel channel = plaintextChannel();
        byte[] request = RawPg.sslRequest();
        byte[] withExtra = java.util.Arrays.copyOf(request, request.length + 3);
        write(channel, withExtra);
        RawPg.Message error = onlyError(channel);
        assertThat(RawPg.errorField(error, 'C')).isEqualTo("08P01");
        assertThat(RawPg.errorMessage(error)).isEqualTo("received unencrypted data after SSL request");
    }

    @Test
    void gssencIsRefusedOnceThenSslAccepted() {
        EmbeddedChannel channel = plaintextChannel();
        write(channel, RawPg.gssencRequest(), RawPg.sslRequest());
        assertThat(outbound(channel)).extracting(RawPg.Message::type).containsExactly('N', 'S');
        channel.finishAndReleaseAll();

        EmbeddedChannel twice = plaintextChannel();
        write(twice, RawPg.gssencRequest());
        assertThat(outbound(twice)).extracting(RawPg.Message::type).containsExactly('N');
        write(twice, RawPg.gssencRequest());
        assertThat(RawPg.errorField(onlyError(twice), 'C')).isEqualTo("08P01");
    }

    @Test
    void directTlsHandsTheClientHelloToTls() {
        EmbeddedChannel channel = plaintextChannel();
        // a TLS record header (handshake, TLS 1.0 record version, length 80), the rest of the ClientHello pending
        write(channel, new byte[] {0x16, 0x03, 0x01, 0x00, 0x50});
        assertThat(channel.pipeline().get(StartupSniffer.class)).isNull();
        assertThat(channel.pipeline().get("tls")).isInstanceOf(SniHandler.class);
        assertThat(outbound(channel)).isEmpty();
        channel.finishAndReleaseAll();
    }

    @Test
    void plaintextStartupIsRejectedWithSslModeHint() {
        EmbeddedChannel channel = plaintextChannel();
        write(channel, startup(params("user", "app", "database", "app")));
        RawPg.Message error = onlyError(channel);
        assertThat(RawPg.errorField(error, 'C')).isEqualTo("28000");
        assertThat(RawPg.errorMessage(error)).isEqualTo("connection is insecure (try using `sslmode=require`)");
    }

    @Test
    void badLengthsCloseSilentlyAsPostgresDoes() {
        for (int length : new int[] {10_001, 1 << 30, 7, 0, -1}) {
            EmbeddedChannel channel = plaintextChannel();
            write(channel, ByteBuffer.allocate(8).putInt(length).putInt(3 << 16).array());
            assertThat(outbound(channel)).as("length " + length).isEmpty();
            assertThat(channel.isActive()).as("length " + length).isFalse();
        }
    }

    @Test
    void terminateBeforeSslRequestClosesSilently() {
        // node-postgres on connect() + end(): Terminate ('X', length 4) before its SSLRequest
        EmbeddedChannel channel = plaintextChannel();
        write(channel, new byte[] {'X', 0, 0, 0, 4});
        assertThat(outbound(channel)).isEmpty();
        assertThat(channel.isActive()).isFalse();
    }

    @Test
    void unknownProtocolCodeIsRejected() {
        EmbeddedChannel channel = plaintextChannel();
        write(channel, ByteBuffer.allocate(8).putInt(8).putInt(2 << 16).array());
        RawPg.Message error = onlyError(channel);
        assertThat(RawPg.errorField(error, 'C')).isEqualTo("0A000");
        assertThat(RawPg.errorMessage(error)).startsWith("unsupported frontend protocol 2.0");
    }

    @Test
    void cancelWithUnknownKeyIsSilentlyClosed() {
        EmbeddedChannel channel = plaintextChannel();
        byte[] cancel = RawPg.cancelRequest(1234, 5678);
        write(channel, java.util.Arrays.copyOf(cancel, 10));
        assertThat(channel.isActive()).as("waits for the rest of the cancel request").isTrue();
        write(channel, java.util.Arrays.copyOfRange(cancel, 10, 16));
        assertThat(outbound(channel)).isEmpty();
        assertThat(channel.isActive()).isFalse();

        EmbeddedChannel wrongLength = plaintextChannel();
        write(wrongLength, ByteBuffer.allocate(12).putInt(12).putInt(PgWire.CANCEL_REQUEST).putInt(1).array());
        assertThat(outbound(wrongLength)).isEmpty();
        assertThat(wrongLength.isActive()).isFalse();
    }

    @Test
    void truncatedPacketWaitsUntilTheHandshakeTimeout() {
        EmbeddedChannel channel = plaintextChannel();
        write(channel, new byte[] {0, 0, 0});
        assertThat(channel.isActive()).isTrue();
        channel.advanceTimeBy(4, TimeUnit.SECONDS);
        channel.runScheduledPendingTasks();
        assertThat(channel.isActive()).isTrue();
        channel.advanceTimeBy(2, TimeUnit.SECONDS);
        channel.runScheduledPendingTasks();
        assertThat(channel.isActive()).isFalse();
        assertThat(outbound(channel)).isEmpty();
    }

    // ---- after TLS ----

    @Test
    void unknownDatabaseGetsMockScramEndingLikeAWrongPassword() {
        String saltFirst = null;
        for (int attempt = 0; attempt < 2; attempt++) {
            EmbeddedChannel channel = tlsChannel("db-unknown1.db.localhost");
            write(channel, startup(params("user", "alice", "database", "app")));
            List<RawPg.Message> sasl = outbound(channel);
            assertThat(sasl).hasSize(1);
            assertThat(sasl.getFirst().type()).isEqualTo('R');
            assertThat(sasl.getFirst().int32(0)).isEqualTo(PgWire.AUTH_SASL);
            write(channel, RawPg.saslInitial("n,,n=,r=abcdef"));
            List<RawPg.Message> cont = outbound(channel);
            assertThat(cont.getFirst().int32(0)).isEqualTo(PgWire.AUTH_SASL_CONTINUE);
            String serverFirst = new String(cont.getFirst().body(), 4, cont.getFirst().body().length - 4,
                    StandardCharsets.UTF_8);
            assertThat(serverFirst).startsWith("r=abcdef").endsWith(",i=4096");
            String salt = serverFirst.replaceAll(".*,s=([^,]*),.*", "$1");
            if (saltFirst == null) {
                saltFirst = salt;
            } else {
                assertThat(salt).as("the mock salt is stable per database and user").isEqualTo(saltFirst);
            }
            write(channel, RawPg.saslResponse("c=biws,r=abcdefXYZ,p=cHJvb2Y="));
            settle(channel);
            RawPg.Message error = onlyError(channel);
            assertThat(RawPg.errorField(error, 'C')).isEqualTo("28P01");
            assertThat(RawPg.errorMessage(error)).isEqualTo("password authentication failed for user \"alice\"");
        }
        assertThat(looked).contains("db-unknown1");
        assertThat(resolved).as("nothing is resolved (or woken) before the login is proven").isEmpty();
    }

    @Test
    void optionsFormRoutesAndMismatchWithSniFails() {
        EmbeddedChannel options = tlsChannel(null);
        write(options, startup(params("user", "app", "options", "-c a=b endpoint=db-opt1")));
        assertThat(outbound(options)).extracting(RawPg.Message::type).containsExactly('R');
        assertThat(looked).contains("db-opt1");
        options.finishAndReleaseAll();

        EmbeddedChannel mismatch = tlsChannel("db-one.db.localhost");
        write(mismatch, startup(params("user", "app", "options", "endpoint=db-two")));
        RawPg.Message error = onlyError(mismatch);
        assertThat(RawPg.errorMessage(error))
                .isEqualTo("Inconsistent project name inferred from SNI ('db-one') and project option ('db-two').");
    }

    @Test
    void noEndpointAsksForCleartextPasswordWithEndpoint() {
        EmbeddedChannel channel = tlsChannel("localhost");
        write(channel, startup(params("user", "app")));
        List<RawPg.Message> ask = outbound(channel);
        assertThat(ask).hasSize(1);
        assertThat(ask.getFirst().int32(0)).isEqualTo(PgWire.AUTH_CLEARTEXT);
        write(channel, RawPg.password("just-a-password"));
        assertThat(RawPg.errorMessage(onlyError(channel))).startsWith("Endpoint ID is not specified.");

        EmbeddedChannel unknown = tlsChannel(null);
        write(unknown, startup(params("user", "app")));
        outbound(unknown);
        write(unknown, RawPg.password("endpoint=db-pw1;secret"));
        settle(unknown);
        RawPg.Message error = onlyError(unknown);
        assertThat(RawPg.errorField(error, 'C')).isEqualTo("28P01");
        assertThat(looked).contains("db-pw1");
        assertThat(resolved).isEmpty();
    }

    @Test
    void newerMinorVersionGetsNegotiateProtocolVersion() {
        EmbeddedChannel channel = tlsChannel("db-nego.db.localhost");
        write(channel, RawPg.startup(3, 2, params("user", "app", "_pq_.something", "on")));
        List<RawPg.Message> messages = outbound(channel);
        assertThat(messages).extracting(RawPg.Message::type).containsExactly('v', 'R');
        RawPg.Message negotiate = messages.getFirst();
        assertThat(negotiate.int32(0)).as("newest minor").isZero();
        assertThat(negotiate.int32(4)).as("unrecognised options").isEqualTo(1);
        assertThat(negotiate.text()).contains("_pq_.something");
        channel.finishAndReleaseAll();
    }

    @Test
    void badStartupsAfterTls() {
        record Case(byte[] bytes, String sqlState, String messageStart) {}
        byte[] noTerminator = startup(params("user", "app"));
        noTerminator[noTerminator.length - 1] = 'x';
        List<Case> cases = List.of(
                new Case(startup(params("database", "app")), "28000", "no PostgreSQL user name"),
                new Case(RawPg.startup(4, 0, params("user", "app")), "0A000", "unsupported frontend protocol 4.0"),
                new Case(RawPg.sslRequest(), "08P01", "encryption request received"),
                new Case(noTerminator, "08P01", "invalid startup packet layout"),
                new Case(startup(params("user", "app", "replication", "database")), "0A000",
                        "the startup parameter \"replication\" is not supported"),
                new Case(startupPairs("user", "app", "user", "postgres"), "08P01",
                        "invalid startup packet: parameter"),
                new Case(invalidUtf8Startup(), "08P01", "invalid startup packet: parameter names and values must be"),
                new Case(startup(params("user", "app", "options", "endpoint=a endpoint=b")), "08004",
                        "the options parameter names two databases"));
        for (Case c : cases) {
            EmbeddedChannel channel = tlsChannel(null);
            write(channel, c.bytes());
            RawPg.Message error = onlyError(channel);
            assertThat(RawPg.errorField(error, 'C')).as(c.messageStart()).isEqualTo(c.sqlState());
            assertThat(RawPg.errorMessage(error)).startsWith(c.messageStart());
        }
    }

    /** A startup packet from raw name/value pairs, duplicates allowed. */
    private static byte[] startupPairs(String... pairs) {
        java.io.ByteArrayOutputStream body = new java.io.ByteArrayOutputStream();
        for (String part : pairs) {
            body.writeBytes(part.getBytes(StandardCharsets.UTF_8));
            body.write(0);
        }
        body.write(0);
        return ByteBuffer.allocate(8 + body.size()).putInt(8 + body.size()).putInt(3 << 16).put(body.toByteArray())
                .array();
    }

    private static byte[] invalidUtf8Startup() {
        byte[] bytes = startup(params("user", "app\u00e9"));
        for (int i = 0; i < bytes.length - 1; i++) {
            if (bytes[i] == (byte) 0xc3) {
                bytes[i] = (byte) 0xff;
            }
        }
        return bytes;
    }

    @Test
    void badLengthAfterTlsClosesSilently() {
        EmbeddedChannel channel = tlsChannel(null);
        write(channel, ByteBuffer.allocate(8).putInt(50_000).putInt(3 << 16).array());
        assertThat(outbound(channel)).isEmpty();
        assertThat(channel.isActive()).isFalse();
    }

    @Test
    void oversizedStartupStreamIsCut() {
        EmbeddedChannel channel = tlsChannel(null);
        // a plausible length, then far more bytes than the cap allows without ever completing a message
        ByteBuf header = Unpooled.buffer().writeInt(9_999).writeInt(3 << 16);
        channel.writeInbound(header);
        for (int i = 0; i < 20 && channel.isActive(); i++) {
            channel.writeInbound(Unpooled.wrappedBuffer(new byte[1000]));
        }
        channel.runPendingTasks();
        assertThat(channel.isActive()).isFalse();
        channel.finishAndReleaseAll();
    }

    @Test
    void cancelInsideTlsIsAcceptedAndClosed() {
        EmbeddedChannel channel = tlsChannel(null);
        write(channel, RawPg.cancelRequest(42, 43));
        assertThat(outbound(channel)).isEmpty();
        assertThat(channel.isActive()).isFalse();
    }

    @Test
    void theAuthenticationDeadlineEndsAStalledSaslExchange() {
        EmbeddedChannel channel = tlsChannel("db-stall1.db.localhost");
        write(channel, startup(params("user", "app")));
        assertThat(outbound(channel)).extracting(RawPg.Message::type).containsExactly('R');
        channel.advanceTimeBy(9, TimeUnit.SECONDS);
        channel.runScheduledPendingTasks();
        assertThat(channel.isActive()).as("within the 10 s deadline").isTrue();
        channel.advanceTimeBy(2, TimeUnit.SECONDS);
        channel.runScheduledPendingTasks();
        assertThat(RawPg.errorMessage(onlyError(channel))).isEqualTo("Authentication timed out");
        assertThat(resolved).doesNotContain("db-stall1");
    }

    @Test
    void startupTimeoutSendsAuthenticationTimedOut() {
        EmbeddedChannel channel = tlsChannel("db-slow.db.localhost");
        write(channel, java.util.Arrays.copyOf(startup(params("user", "app")), 6));
        channel.advanceTimeBy(21, TimeUnit.SECONDS);
        channel.runScheduledPendingTasks();
        RawPg.Message error = onlyError(channel);
        assertThat(RawPg.errorMessage(error)).isEqualTo("Authentication timed out");
    }
}
