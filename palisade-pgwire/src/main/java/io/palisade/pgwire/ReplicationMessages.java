package io.palisade.pgwire;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;

/**
 * The payloads of CopyData messages in a physical replication stream: XLogData ('w') and primary keepalive ('k') from
 * the server, standby status update ('r') from us. Times are microseconds since 2000-01-01 UTC. Stateless.
 */
final class ReplicationMessages {
    static final Instant POSTGRES_EPOCH = Instant.parse("2000-01-01T00:00:00Z");
    static final int XLOG_DATA_HEADER = 25;

    private ReplicationMessages() {}

    /**
     * Decodes one CopyData payload. XLogData's WAL bytes are copied once, into an array the message owns.
     *
     * @throws IllegalArgumentException for an unknown or truncated payload
     */
    static WalMessage decode(byte[] buffer, int offset, int length) {
        if (length < 1) {
            throw new IllegalArgumentException("empty CopyData in a replication stream");
        }
        switch (buffer[offset]) {
            case 'w' -> {
                if (length < XLOG_DATA_HEADER) {
                    throw new IllegalArgumentException("XLogData of " + length + " bytes is shorter than its header");
                }
                Lsn start = new Lsn(Bytes.int64(buffer, offset + 1));
                Lsn end = new Lsn(Bytes.int64(buffer, offset + 9));
                Instant sent = toInstant(Bytes.int64(buffer, offset + 17));
                byte[] data = new byte[length - XLOG_DATA_HEADER];
                System.arraycopy(buffer, offset + XLOG_DATA_HEADER, data, 0, data.length);
                return new WalMessage.XLogData(start, end, sent, ByteBuffer.wrap(data));
            }
            case 'k' -> {
                if (length < 18) {
                    throw new IllegalArgumentException("keepalive of " + length + " bytes; expected 18");
                }
                return new WalMessage.Keepalive(new Lsn(Bytes.int64(buffer, offset + 1)),
                        toInstant(Bytes.int64(buffer, offset + 9)), buffer[offset + 17] != 0);
            }
            default -> throw new IllegalArgumentException("unknown replication message type '"
                    + (char) (buffer[offset] & 0xff) + "'");
        }
    }

    /** The Standby Status Update payload ('r'), 34 bytes. */
    static void standbyStatus(MessageWriter writer, Lsn written, Lsn flushed, Lsn applied, Instant now,
            boolean replyRequested) {
        writer.int8('r')
                .int64(written.value())
                .int64(flushed.value())
                .int64(applied.value())
                .int64(toMicros(now))
                .int8(replyRequested ? 1 : 0);
    }

    static Instant toInstant(long microsSince2000) {
        return POSTGRES_EPOCH.plus(microsSince2000, ChronoUnit.MICROS);
    }

    static long toMicros(Instant instant) {
        Duration since = Duration.between(POSTGRES_EPOCH, instant);
        return since.getSeconds() * 1_000_000L + since.getNano() / 1_000;
    }
}
