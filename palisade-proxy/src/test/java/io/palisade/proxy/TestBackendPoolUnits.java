package io.palisade.proxy;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.palisade.pgwire.PgMessages;
import io.palisade.spi.Endpoint;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The pieces of backend reuse without a server: {@link RelayTracker} on hand-built protocol bytes (whole, split at
 * every byte, pipelined), and {@link PooledBackend}'s reset on an {@link EmbeddedChannel}: only the exact answer to
 * {@code DISCARD ALL} parks a connection, anything else closes it.
 */
class TestBackendPoolUnits {
    private static final String DB = "db-unit0001";

    // ---- protocol bytes ----

    private static byte[] message(char type, byte[] body) {
        byte[] out = new byte[5 + body.length];
        out[0] = (byte) type;
        int length = 4 + body.length;
        out[1] = (byte) (length >>> 24);
        out[2] = (byte) (length >>> 16);
        out[3] = (byte) (length >>> 8);
        out[4] = (byte) length;
        System.arraycopy(body, 0, out, 5, body.length);
        return out;
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    private static final byte[] TERMINATE = message('X', new byte[0]);
    private static final byte[] SYNC = message('S', new byte[0]);
    private static final byte[] PARSE = message('P', "\0SELECT 1\0\0\0".getBytes(UTF_8));

    private static byte[] query(String sql) {
        return PgMessages.query(sql);
    }

    private static byte[] ready(char status) {
        return PgMessages.readyForQuery(status);
    }

    private static byte[] commandComplete(String tag) {
        return message('C', (tag + "\0").getBytes(UTF_8));
    }

    /** Feeds {@code bytes} in pieces of {@code piece} bytes; returns the last piece's result of fromClient. */
    private static int client(RelayTracker tracker, byte[] bytes, int piece) {
        int result = -1;
        for (int at = 0; at < bytes.length; at += piece) {
            ByteBuf buf = Unpooled.wrappedBuffer(bytes, at, Math.min(piece, bytes.length - at));
            int found = tracker.fromClient(buf);
            result = found < 0 ? -1 : found - buf.readerIndex();
            assertThat(buf.readerIndex()).as("the tracker does not consume").isZero();
        }
        return result;
    }

    private static void backend(RelayTracker tracker, byte[] bytes, int piece) {
        for (int at = 0; at < bytes.length; at += piece) {
            tracker.fromBackend(Unpooled.wrappedBuffer(bytes, at, Math.min(piece, bytes.length - at)));
        }
    }

    @Test
    void aSessionThatEndsIdleIsReusableEvenWhenEveryByteArrivesAlone() {
        for (int piece : new int[] {1, 2, 3, 7, 1 << 20}) {
            RelayTracker tracker = new RelayTracker();
            client(tracker, query("SET work_mem = '8MB'"), piece);
            backend(tracker, concat(commandComplete("SET"), PgMessages.parameterStatus("application_name", "x"),
                    ready('I')), piece);
            client(tracker, concat(PARSE, SYNC), piece);
            backend(tracker, concat(message('1', new byte[0]), ready('I')), piece);
            int at = client(tracker, TERMINATE, Math.max(piece, TERMINATE.length));
            assertThat(at).as("piece %d", piece).isZero();
            assertThat(tracker.reusable()).as("piece %d", piece).isTrue();
            assertThat(tracker.reported()).containsExactly(Map.entry("application_name", "x"));
        }
    }

    @Test
    void anythingButAnIdleEndIsNotReusable() {
        // in a transaction
        RelayTracker transaction = new RelayTracker();
        client(transaction, query("BEGIN"), 100);
        backend(transaction, concat(commandComplete("BEGIN"), ready('T')), 100);
        client(transaction, TERMINATE, 100);
        assertThat(transaction.reusable()).isFalse();
        // a query still running
        RelayTracker running = new RelayTracker();
        client(running, query("SELECT pg_sleep(10)"), 100);
        client(running, TERMINATE, 100);
        assertThat(running.reusable()).isFalse();
        // extended-protocol messages without their Sync
        RelayTracker unsynced = new RelayTracker();
        client(unsynced, PARSE, 100);
        client(unsynced, TERMINATE, 100);
        assertThat(unsynced.reusable()).isFalse();
        // in COPY FROM STDIN
        RelayTracker copying = new RelayTracker();
        client(copying, query("COPY t FROM STDIN"), 100);
        backend(copying, message('G', new byte[] {0, 0, 0}), 100);
        client(copying, message('d', "1\n".getBytes(UTF_8)), 100);
        client(copying, TERMINATE, 100);
        assertThat(copying.reusable()).isFalse();
        // bytes after Terminate, in the same buffer
        RelayTracker trailing = new RelayTracker();
        assertThat(client(trailing, concat(TERMINATE, query("SELECT 1")), 100)).isEqualTo(-1);
        assertThat(trailing.reusable()).isFalse();
        // a ReadyForQuery nobody asked for, an unknown frontend message
        RelayTracker unasked = new RelayTracker();
        backend(unasked, ready('I'), 100);
        client(unasked, TERMINATE, 100);
        assertThat(unasked.reusable()).isFalse();
        RelayTracker unknown = new RelayTracker();
        client(unknown, message('?', new byte[0]), 100);
        client(unknown, TERMINATE, 100);
        assertThat(unknown.reusable()).isFalse();
        // the backend stopped in the middle of a message
        RelayTracker partial = new RelayTracker();
        client(partial, query("SELECT 1"), 100);
        backend(partial, ready('I'), 100);
        backend(partial, new byte[] {'N', 0, 0}, 100);
        client(partial, TERMINATE, 100);
        assertThat(partial.reusable()).isFalse();
    }

    @Test
    void aTerminatePipelinedAfterAQueryIsNotReusable() {
        RelayTracker tracker = new RelayTracker();
        assertThat(client(tracker, concat(query("SELECT 1"), TERMINATE), 100)).as("after a query, pipelined")
                .isEqualTo(query("SELECT 1").length);
        assertThat(tracker.reusable()).as("the query is not answered").isFalse();
    }

    // ---- the reset ----

    private static BackendPool.Key key(Map<String, String> startup) {
        return new BackendPool.Key(DB, new Endpoint("127.0.0.1", 5432), startup, "",
                BackendPool.Key.credentialDigest("pw"));
    }

    private static final BackendPool.Login LOGIN = new BackendPool.Login(Map.of("application_name", "app",
            "TimeZone", "UTC"), 4242, 77);

    private record Offered(BackendPool pool, EmbeddedChannel channel, boolean accepted) {}

    private static Offered offer(BackendPool pool, BackendPool.Key key) {
        ChannelHandler current = new ChannelInboundHandlerAdapter();
        EmbeddedChannel channel = new EmbeddedChannel(current);
        boolean accepted = pool.offer(channel, current, key, pool.generation(DB), LOGIN);
        return new Offered(pool, channel, accepted);
    }

    private static BackendPool pool(int max) {
        return new BackendPool(Duration.ofMinutes(1), max, new SimpleMeterRegistry());
    }

    private static byte[] written(EmbeddedChannel channel) {
        ByteBuf out = channel.readOutbound();
        try {
            byte[] bytes = new byte[out.readableBytes()];
            out.readBytes(bytes);
            return bytes;
        } finally {
            out.release();
        }
    }

    @Test
    void theExactAnswerToDiscardAllParksTheConnectionWithItsReports() {
        BackendPool pool = pool(2);
        BackendPool.Key key = key(Map.of("user", "app", "database", "app"));
        Offered offered = offer(pool, key);
        assertThat(offered.accepted()).isTrue();
        assertThat(written(offered.channel())).isEqualTo(query("DISCARD ALL"));
        assertThat(pool.idle(DB)).isEqualTo(1);
        offered.channel().writeInbound(Unpooled.wrappedBuffer(concat(
                message('N', "SNOTICE\0Mhello\0\0".getBytes(UTF_8)), commandComplete("DISCARD ALL"),
                PgMessages.parameterStatus("application_name", "reset"))));
        assertThat(pool.take(offered.channel().eventLoop(), key)).as("not before ReadyForQuery").isNull();
        offered.channel().writeInbound(Unpooled.wrappedBuffer(ready('I')));
        assertThat(pool.take(offered.channel().eventLoop(), key(Map.of("user", "app", "database", "other"))))
                .as("another startup parameter set").isNull();
        PooledBackend taken = pool.take(offered.channel().eventLoop(), key);
        assertThat(taken).isNotNull();
        assertThat(taken.login().parameters()).containsEntry("application_name", "reset")
                .containsEntry("TimeZone", "UTC");
        assertThat(taken.login().processId()).isEqualTo(4242);
        assertThat(offered.channel().isOpen()).isTrue();
        assertThat(pool.idle(DB)).isZero();
        assertThat(pool.take(offered.channel().eventLoop(), key)).as("taken once").isNull();
        offered.channel().finishAndReleaseAll();
    }

    @Test
    void anUnexpectedAnswerOrAByteWhileParkedClosesTheConnection() {
        BackendPool.Key key = key(Map.of("user", "app"));
        byte[][] wrongAnswers = {
            concat(message('E', "SERROR\0C25001\0Mno\0\0".getBytes(UTF_8)), ready('T')),
            concat(commandComplete("SELECT 1"), ready('I')),
            concat(commandComplete("DISCARD ALL"), ready('T')),
            ready('I'),
            concat(commandComplete("DISCARD ALL"), ready('I'), message('A', new byte[8])),
        };
        for (byte[] answer : wrongAnswers) {
            BackendPool pool = pool(2);
            Offered offered = offer(pool, key);
            written(offered.channel());
            offered.channel().writeInbound(Unpooled.wrappedBuffer(answer));
            offered.channel().runPendingTasks();
            assertThat(offered.channel().isOpen()).isFalse();
            assertThat(pool.idle(DB)).isZero();
            assertThat(pool.idle()).isZero();
            assertThat(pool.take(offered.channel().eventLoop(), key)).isNull();
            offered.channel().finishAndReleaseAll();
        }
        BackendPool pool = pool(2);
        Offered parked = offer(pool, key);
        written(parked.channel());
        parked.channel().writeInbound(Unpooled.wrappedBuffer(concat(commandComplete("DISCARD ALL"), ready('I'))));
        assertThat(pool.idle(DB)).isEqualTo(1);
        parked.channel().writeInbound(Unpooled.wrappedBuffer(message('N', "SNOTICE\0Mbye\0\0".getBytes(UTF_8))));
        parked.channel().runPendingTasks();
        assertThat(parked.channel().isOpen()).isFalse();
        assertThat(pool.idle(DB)).isZero();
        assertThat(pool.take(parked.channel().eventLoop(), key)).isNull();
        parked.channel().finishAndReleaseAll();
    }

    @Test
    void boundsAndEvictionRefuseOrCloseConnections() {
        BackendPool pool = pool(1);
        BackendPool.Key key = key(Map.of("user", "app"));
        Offered first = offer(pool, key);
        assertThat(first.accepted()).isTrue();
        assertThat(offer(pool, key).accepted()).as("beyond max-idle-backends-per-database").isFalse();
        written(first.channel());
        first.channel().writeInbound(Unpooled.wrappedBuffer(concat(commandComplete("DISCARD ALL"), ready('I'))));
        long before = pool.generation(DB);
        pool.evict(DB, false);
        first.channel().runPendingTasks();
        assertThat(written(first.channel())).as("Terminate").isEqualTo(PgMessages.terminate());
        assertThat(pool.idle(DB)).isZero();
        // the server closes the connection on Terminate; one that does not is closed after GIVE_WAY_WAIT
        assertThat(first.channel().isOpen()).isTrue();
        first.channel().advanceTimeBy(BackendPool.GIVE_WAY_WAIT.toMillis(), TimeUnit.MILLISECONDS);
        first.channel().runScheduledPendingTasks();
        assertThat(first.channel().isOpen()).isFalse();
        first.channel().finishAndReleaseAll();
        // a connection logged in before the eviction is not pooled after it
        ChannelHandler current = new ChannelInboundHandlerAdapter();
        EmbeddedChannel stale = new EmbeddedChannel(current);
        assertThat(pool.offer(stale, current, key, before, LOGIN)).isFalse();
        stale.finishAndReleaseAll();
        assertThat(pool(0).enabled()).isFalse();
        assertThat(new BackendPool(Duration.ZERO, 4, new SimpleMeterRegistry()).enabled()).isFalse();
    }
    // ---- review: bounds a hostile server or client cannot cross ----

    /** {@code count} ParameterStatus reports with distinct names. */
    private static byte[] reports(int count) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < count; i++) {
            out.writeBytes(PgMessages.parameterStatus("x.r" + i, "v"));
        }
        return out.toByteArray();
    }

    @Test
    void aServerThatReportsTooManyNamesDuringTheRelayIsNotPooledAndGrowsNothing() {
        RelayTracker within = new RelayTracker();
        client(within, query("SELECT 1"), 1 << 20);
        backend(within, concat(reports(BackendPool.MAX_REPORTS), ready('I')), 1 << 20);
        client(within, TERMINATE, 1 << 20);
        assertThat(within.reusable()).isTrue();

        RelayTracker flooded = new RelayTracker();
        client(flooded, query("SELECT 1"), 1 << 20);
        backend(flooded, concat(reports(10 * BackendPool.MAX_REPORTS), ready('I')), 1 << 20);
        client(flooded, TERMINATE, 1 << 20);
        assertThat(flooded.reusable()).isFalse();
        assertThat(flooded.reported()).hasSize(BackendPool.MAX_REPORTS);
    }

    @Test
    void aResetAnswerWithTooManyOrTooLongReportsClosesTheConnection() {
        BackendPool.Key key = key(Map.of("user", "app"));
        byte[][] floods = {
            reports(BackendPool.MAX_REPORTS + 1),
            PgMessages.parameterStatus("application_name", "y".repeat(BackendPool.MAX_REPORT_CHARS)),
        };
        for (byte[] flood : floods) {
            BackendPool pool = pool(2);
            Offered offered = offer(pool, key);
            written(offered.channel());
            offered.channel().writeInbound(Unpooled.wrappedBuffer(concat(flood, commandComplete("DISCARD ALL"),
                    ready('I'))));
            offered.channel().runPendingTasks();
            assertThat(offered.channel().isOpen()).isFalse();
            assertThat(pool.idle()).isZero();
            assertThat(pool.take(offered.channel().eventLoop(), key)).isNull();
            offered.channel().finishAndReleaseAll();
        }
    }

    @Test
    void aLoginWithTooManyReportsIsNotOffered() {
        BackendPool pool = pool(2);
        Map<String, String> many = new LinkedHashMap<>();
        for (int i = 0; i <= BackendPool.MAX_REPORTS; i++) {
            many.put("x.r" + i, "v");
        }
        ChannelHandler current = new ChannelInboundHandlerAdapter();
        EmbeddedChannel channel = new EmbeddedChannel(current);
        assertThat(pool.offer(channel, current, key(Map.of("user", "app")), pool.generation(DB),
                new BackendPool.Login(many, 1, 2))).isFalse();
        assertThat((Object) channel.readOutbound()).as("no reset sent").isNull();
        assertThat(pool.idle()).isZero();
        channel.finishAndReleaseAll();
    }

    @Test
    void aKeyACancelWasForwardedWithSaysSoWhenUnregistered() {
        CancelRegistry cancels = new CancelRegistry();
        CancelRegistry.Target target = new CancelRegistry.Target(DB, new Endpoint("127.0.0.1", 5432), 1, 2);
        CancelRegistry.ProxyKey quiet = cancels.register(target);
        assertThat(cancels.unregister(quiet)).as("no cancel was forwarded").isFalse();
        CancelRegistry.ProxyKey cancelled = cancels.register(target);
        assertThat(cancels.cancel(cancelled.processId(), cancelled.secretKey())).contains(target);
        assertThat(cancels.unregister(cancelled)).as("a cancel was forwarded").isTrue();
        assertThat(cancels.cancel(cancelled.processId(), cancelled.secretKey())).as("retired key").isEmpty();
        assertThat(cancels.unregister(cancelled)).isFalse();
        assertThat(cancels.size()).isZero();
    }
}
