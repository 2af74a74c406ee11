package io.palisade.pgwire;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The CopyData payloads of physical replication and BASE_BACKUP, fed through the decoders as bytes. */
class TestReplicationMessages {
    private static final Instant SENT = Instant.parse("2024-05-06T07:08:09.123456Z");

    @Test
    void decodesXLogDataIntoAnOwnedCopy() {
        byte[] wal = "some WAL bytes".getBytes(UTF_8);
        byte[] payload = new MessageWriter().int8('w').int64(0x16_B374_D848L).int64(0x16_B400_0000L)
                .int64(ReplicationMessages.toMicros(SENT)).bytes(wal, 0, wal.length).toByteArray();
        byte[] framed = new byte[payload.length + 7];
        System.arraycopy(payload, 0, framed, 3, payload.length);

        WalMessage message = ReplicationMessages.decode(framed, 3, payload.length);
        assertThat(message).isInstanceOfSatisfying(WalMessage.XLogData.class, data -> {
            assertThat(data.walStart()).isEqualTo(Lsn.parse("16/B374D848"));
            assertThat(data.serverWalEnd()).isEqualTo(Lsn.parse("16/B4000000"));
            assertThat(data.serverTime()).isEqualTo(SENT);
            assertThat(data.length()).isEqualTo(wal.length);
            assertThat(data.walEnd()).isEqualTo(Lsn.parse("16/B374D848").plus(wal.length));
            ByteBuffer first = data.data();
            byte[] copy = new byte[first.remaining()];
            first.get(copy);
            assertThat(copy).isEqualTo(wal);
            assertThat(data.data().remaining()).as("each call is a fresh view").isEqualTo(wal.length);
            assertThat(data.data().isReadOnly()).isTrue();
        });
        // the message owns its bytes: reusing the receive buffer does not change it
        java.util.Arrays.fill(framed, (byte) 0);
        ByteBuffer after = ((WalMessage.XLogData) message).data();
        assertThat(after.get(0)).isEqualTo((byte) 's');
    }

    @Test
    void decodesKeepalives() {
        byte[] payload = new MessageWriter().int8('k').int64(0x1_0000_0010L).int64(ReplicationMessages.toMicros(SENT))
                .int8(1).toByteArray();
        assertThat(ReplicationMessages.decode(payload, 0, payload.length))
                .isEqualTo(new WalMessage.Keepalive(Lsn.parse("1/10"), SENT, true));
        payload[17] = 0;
        assertThat(((WalMessage.Keepalive) ReplicationMessages.decode(payload, 0, payload.length)).replyRequested())
                .isFalse();
    }

    @Test
    void rejectsUnknownAndTruncatedPayloads() {
        assertThatThrownBy(() -> ReplicationMessages.decode(new byte[] {'w', 0, 0}, 0, 3))
                .hasMessageContaining("shorter than its header");
        assertThatThrownBy(() -> ReplicationMessages.decode(new byte[] {'k', 0}, 0, 2))
                .hasMessageContaining("keepalive of 2 bytes");
        assertThatThrownBy(() -> ReplicationMessages.decode(new byte[] {'x'}, 0, 1))
                .hasMessageContaining("unknown replication message type 'x'");
        assertThatThrownBy(() -> ReplicationMessages.decode(new byte[0], 0, 0)).hasMessageContaining("empty");
    }

    @Test
    void encodesStandbyStatusUpdates() {
        MessageWriter writer = new MessageWriter();
        ReplicationMessages.standbyStatus(writer, Lsn.parse("1/30"), Lsn.parse("1/20"), Lsn.parse("1/10"), SENT,
                true);
        byte[] bytes = writer.toByteArray();
        assertThat(bytes).hasSize(34);
        assertThat((char) bytes[0]).isEqualTo('r');
        assertThat(Bytes.int64(bytes, 1)).isEqualTo(0x1_0000_0030L);
        assertThat(Bytes.int64(bytes, 9)).isEqualTo(0x1_0000_0020L);
        assertThat(Bytes.int64(bytes, 17)).isEqualTo(0x1_0000_0010L);
        // 2024-05-06T07:08:09.123456Z in microseconds since 2000-01-01
        assertThat(Bytes.int64(bytes, 25)).isEqualTo(768_294_489_123_456L);
        assertThat(bytes[33]).isEqualTo((byte) 1);
        assertThat(ReplicationMessages.toInstant(768_294_489_123_456L)).isEqualTo(SENT);
    }

    @Test
    void baseBackupPayloadsReachTheSinkInOrder() throws Exception {
        RecordingSink sink = new RecordingSink();
        feed(sink, new MessageWriter().int8('n').cstring("base.tar").cstring(""));
        feed(sink, new MessageWriter().int8('d').bytes("tar-bytes".getBytes(UTF_8), 0, 9));
        feed(sink, new MessageWriter().int8('p').int64(9));
        feed(sink, new MessageWriter().int8('n').cstring("16385.tar").cstring("/srv/ts"));
        feed(sink, new MessageWriter().int8('d').bytes("more".getBytes(UTF_8), 0, 4));
        feed(sink, new MessageWriter().int8('m'));
        feed(sink, new MessageWriter().int8('d').bytes("{}".getBytes(UTF_8), 0, 2));
        assertThat(sink.events).containsExactly("archive base.tar ''", "data tar-bytes", "progress 9",
                "archive 16385.tar '/srv/ts'", "data more", "manifest", "data {}");

        assertThatThrownBy(() -> feed(sink, new MessageWriter().int8('n').bytes(new byte[] {'a'}, 0, 1)))
                .hasMessageContaining("malformed new-archive");
        assertThatThrownBy(() -> feed(sink, new MessageWriter().int8('p').int32(1)))
                .hasMessageContaining("progress message of 5 bytes");
        assertThatThrownBy(() -> feed(sink, new MessageWriter().int8('z')))
                .hasMessageContaining("unknown BASE_BACKUP message type 'z'");
    }

    private static void feed(BaseBackupSink sink, MessageWriter payload) throws Exception {
        byte[] bytes = payload.toByteArray();
        byte[] padded = new byte[bytes.length + 10];
        System.arraycopy(bytes, 0, padded, 5, bytes.length);
        BaseBackupProtocol.dispatch(padded, 5, bytes.length, sink);
    }

    private static final class RecordingSink implements BaseBackupSink {
        final List<String> events = new ArrayList<>();

        @Override
        public void archiveStart(String name, String tablespaceLocation) {
            events.add("archive " + name + " '" + tablespaceLocation + "'");
        }

        @Override
        public void data(byte[] buffer, int offset, int length) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.write(buffer, offset, length);
            events.add("data " + out.toString(UTF_8));
        }

        @Override
        public void manifestStart() {
            events.add("manifest");
        }

        @Override
        public void progress(long bytesDone) {
            events.add("progress " + bytesDone);
        }
    }
}
