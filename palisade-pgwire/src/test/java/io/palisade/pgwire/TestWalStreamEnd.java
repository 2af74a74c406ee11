package io.palisade.pgwire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The end of a timeline, which a real server only shows after a promotion: a scripted server on a Unix socket plays
 * the walsender's side byte for byte, and records what the client sent.
 */
class TestWalStreamEnd {
    @TempDir
    Path dir;

    @Test
    void serverEndingTheTimelineYieldsEndOfTimelineAndAReadyConnection() throws Exception {
        MessageWriter stream = new MessageWriter();
        byte[] wal = {1, 2, 3, 4};
        stream.start('W').int8(0).int16(0).end();
        stream.start('d').int8('w').int64(0x3000000).int64(0x3000004).int64(0).bytes(wal, 0, wal.length).end();
        stream.start('c').end();
        MessageWriter trailer = new MessageWriter();
        rowDescription(trailer, "next_tli", "next_tli_startpos");
        dataRow(trailer, "2", "0/3000004");
        trailer.start('C').cstring("SELECT 1").end();
        trailer.start('C').cstring("START_STREAMING").end();
        ready(trailer);
        MessageWriter identify = new MessageWriter();
        rowDescription(identify, "systemid", "timeline", "xlogpos", "dbname");
        dataRow(identify, "7000000000000000001", "2", "0/3000100", null);
        identify.start('C').cstring("IDENTIFY_SYSTEM").end();
        ready(identify);

        try (Scripted server = new Scripted(dir.resolve("s.sock"))) {
            CompletableFuture<List<Character>> script = server.run(s -> {
                s.login();
                s.expect('Q');
                s.send(stream);
                s.expect('c');
                s.send(trailer);
                s.expect('Q');
                s.send(identify);
            });
            try (ReplicationConnection connection = server.connect()) {
                WalStream walStream = connection.startPhysical(Optional.empty(), Lsn.parse("0/3000000"), 1);
                WalMessage first = walStream.next(Duration.ofSeconds(5)).orElseThrow();
                assertThat(first).isInstanceOf(WalMessage.XLogData.class);
                assertThat(walStream.next(Duration.ofSeconds(5)))
                        .contains(new WalMessage.EndOfTimeline(2, Lsn.parse("0/3000004")));
                assertThat(walStream.isActive()).isFalse();
                assertThatThrownBy(() -> walStream.next(Duration.ZERO)).hasMessageContaining("has ended");
                assertThat(connection.identifySystem().timeline()).isEqualTo(2);
            }
            assertThat(script.get(10, TimeUnit.SECONDS)).containsExactly('Q', 'c', 'Q');
        }
    }

    @Test
    void aHistoricTimelineWithNothingLeftSkipsCopy() throws Exception {
        MessageWriter answer = new MessageWriter();
        rowDescription(answer, "next_tli", "next_tli_startpos");
        dataRow(answer, "3", "0/5000000");
        answer.start('C').cstring("START_STREAMING").end();
        ready(answer);
        try (Scripted server = new Scripted(dir.resolve("s.sock"))) {
            CompletableFuture<List<Character>> script = server.run(s -> {
                s.login();
                s.expect('Q');
                s.send(answer);
            });
            try (ReplicationConnection connection = server.connect()) {
                WalStream walStream = connection.startPhysical(Optional.empty(), Lsn.parse("0/5000000"), 2);
                assertThat(walStream.next(Duration.ZERO))
                        .contains(new WalMessage.EndOfTimeline(3, Lsn.parse("0/5000000")));
                assertThat(walStream.isActive()).isFalse();
            }
            assertThat(script.get(10, TimeUnit.SECONDS)).containsExactly('Q');
        }
    }

    private static void rowDescription(MessageWriter writer, String... names) {
        writer.start('T').int16(names.length);
        for (String name : names) {
            writer.cstring(name).int32(0).int16(0).int32(25).int16(-1).int32(-1).int16(0);
        }
        writer.end();
    }

    private static void dataRow(MessageWriter writer, String... values) {
        writer.start('D').int16(values.length);
        for (String value : values) {
            if (value == null) {
                writer.int32(-1);
            } else {
                byte[] bytes = value.getBytes(java.nio.charset.StandardCharsets.UTF_8);
                writer.int32(bytes.length).bytes(bytes, 0, bytes.length);
            }
        }
        writer.end();
    }

    private static void ready(MessageWriter writer) {
        writer.start('Z').int8('I').end();
    }

    /** A one-connection server that follows a script; its future holds the types of the messages it received. */
    private static final class Scripted implements AutoCloseable {
        private final Path socket;
        private final ServerSocketChannel server;
        private SocketChannel client;
        private final List<Character> received = new ArrayList<>();

        Scripted(Path socket) throws IOException {
            this.socket = socket;
            this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(socket));
        }

        interface Script {
            void play(Scripted server) throws IOException;
        }

        CompletableFuture<List<Character>> run(Script script) {
            CompletableFuture<List<Character>> done = new CompletableFuture<>();
            Thread.ofVirtual().name("scripted-pg").start(() -> {
                try {
                    client = server.accept();
                    script.play(this);
                    done.complete(received);
                } catch (Throwable e) {
                    done.completeExceptionally(e);
                }
            });
            return done;
        }

        ReplicationConnection connect() {
            return ReplicationConnection.open(new PgTarget.UnixSocket(socket), "tester", Optional.empty(),
                    Duration.ofSeconds(5));
        }

        void login() throws IOException {
            int length = readInt();
            readFully(length - 4);
            MessageWriter ok = new MessageWriter();
            ok.start('R').int32(0).end();
            ok.start('S').cstring("server_version").cstring("16.11").end();
            ok.start('K').int32(4242).int32(7).end();
            ready(ok);
            send(ok);
        }

        void expect(char type) throws IOException {
            char actual = (char) (readFully(1).get() & 0xff);
            readFully(readInt() - 4);
            received.add(actual);
            if (actual != type) {
                throw new AssertionError("expected message '" + type + "' from the client, got '" + actual + "'");
            }
        }

        void send(MessageWriter writer) throws IOException {
            ByteBuffer buffer = ByteBuffer.wrap(writer.buffer(), 0, writer.size());
            while (buffer.hasRemaining()) {
                client.write(buffer);
            }
        }

        private int readInt() throws IOException {
            return readFully(4).getInt();
        }

        private ByteBuffer readFully(int length) throws IOException {
            ByteBuffer buffer = ByteBuffer.allocate(length);
            while (buffer.hasRemaining()) {
                if (client.read(buffer) < 0) {
                    throw new IOException("client closed the connection");
                }
            }
            return buffer.flip();
        }

        @Override
        public void close() throws IOException {
            if (client != null) {
                client.close();
            }
            server.close();
        }
    }
}
