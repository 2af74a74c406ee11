package io.palisade.pgwire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Pipe;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Message framing over a pipe: partial arrival, timeouts that consume nothing, large messages, end of stream. */
class TestPgStream {
    private Pipe toClient;
    private Pipe fromClient;
    private PgStream stream;

    @BeforeEach
    void open() throws IOException {
        toClient = Pipe.open();
        fromClient = Pipe.open();
        stream = new PgStream(toClient.source(), fromClient.sink());
    }

    @AfterEach
    void close() throws IOException {
        stream.close();
        toClient.sink().close();
        fromClient.source().close();
    }

    private void serverSends(byte[] bytes, int from, int to) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap(bytes, from, to - from);
        while (buffer.hasRemaining()) {
            toClient.sink().write(buffer);
        }
    }

    private static long soon() {
        return PgStream.deadline(Duration.ofMillis(200));
    }

    @Test
    void aMessageArrivingInPiecesIsReadWholeAndATimeoutConsumesNothing() throws IOException {
        byte[] message = new MessageWriter().start('C').cstring("SELECT 1").end().toByteArray();
        serverSends(message, 0, 3);
        assertThat(stream.read(soon())).as("half a header").isFalse();
        serverSends(message, 3, 8);
        assertThat(stream.read(soon())).as("header, half a body").isFalse();
        serverSends(message, 8, message.length);
        assertThat(stream.read(soon())).isTrue();
        assertThat(stream.type()).isEqualTo('C');
        assertThat(new String(stream.buffer(), stream.bodyOffset(), stream.bodyLength())).isEqualTo("SELECT 1\0");
    }

    @Test
    void severalMessagesInOneWriteAreReadOneByOne() throws IOException {
        MessageWriter writer = new MessageWriter();
        writer.start('Z').int8('I').end();
        writer.start('d').int8('k').end();
        writer.start('c').end();
        byte[] bytes = writer.toByteArray();
        serverSends(bytes, 0, bytes.length);
        assertThat(stream.read(soon())).isTrue();
        assertThat(stream.type()).isEqualTo('Z');
        assertThat(stream.read(soon())).isTrue();
        assertThat(stream.type()).isEqualTo('d');
        assertThat(stream.bodyLength()).isEqualTo(1);
        assertThat(stream.read(soon())).isTrue();
        assertThat(stream.type()).isEqualTo('c');
        assertThat(stream.bodyLength()).isZero();
        assertThat(stream.read(soon())).isFalse();
    }

    @Test
    void messagesLargerThanTheBufferGrowIt() throws Exception {
        byte[] big = new byte[700 * 1024];
        Arrays.fill(big, (byte) 'x');
        big[big.length - 1] = 'y';
        byte[] message = new MessageWriter().start('d').bytes(big, 0, big.length).end().toByteArray();
        Thread writer = Thread.ofVirtual().start(() -> {
            try {
                serverSends(message, 0, message.length);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        assertThat(stream.read(PgStream.deadline(Duration.ofSeconds(10)))).isTrue();
        assertThat(stream.bodyLength()).isEqualTo(big.length);
        assertThat(stream.buffer()[stream.bodyOffset() + big.length - 1]).isEqualTo((byte) 'y');
        writer.join();
    }

    @Test
    void corruptLengthsAndEndOfStreamFail() throws IOException {
        byte[] corrupt = {'Z', 0, 0, 0, 2};
        serverSends(corrupt, 0, corrupt.length);
        assertThatThrownBy(() -> stream.read(soon())).hasMessageContaining("corrupt message")
                .hasMessageContaining("length 2");

        PgStream other = new PgStream(toClient.source(), fromClient.sink());
        toClient.sink().close();
        assertThatThrownBy(() -> other.read(soon())).isInstanceOf(EOFException.class);
    }

    @Test
    void writesWholeFramesAndCloseAbortsABlockedRead() throws Exception {
        byte[] frame = new MessageWriter().start('Q').cstring("SELECT 1").end().toByteArray();
        stream.write(frame, 0, frame.length, soon());
        ByteBuffer received = ByteBuffer.allocate(frame.length);
        while (received.hasRemaining()) {
            fromClient.source().read(received);
        }
        assertThat(received.array()).isEqualTo(frame);

        Thread closer = Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            stream.close();
        });
        long started = System.nanoTime();
        assertThatThrownBy(() -> stream.read(PgStream.NO_DEADLINE)).isInstanceOf(IOException.class);
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(5));
        closer.join();
        assertThat(stream.isClosed()).isTrue();
    }
}
