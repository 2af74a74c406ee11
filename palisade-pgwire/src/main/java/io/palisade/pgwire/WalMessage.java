package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import java.nio.ByteBuffer;
import java.time.Instant;

/** A message of a physical replication stream ({@link WalStream#next}). */
public sealed interface WalMessage permits WalMessage.XLogData, WalMessage.Keepalive, WalMessage.EndOfTimeline {
    /**
     * WAL bytes starting at {@code walStart}. {@code serverWalEnd} is how far the server's WAL reaches, and
     * {@code serverTime} when it sent this. {@link #data()} is a fresh read-only view of bytes this message owns (never
     * reused by the stream), so it can be kept or handed to another thread.
     */
    record XLogData(Lsn walStart, Lsn serverWalEnd, Instant serverTime, ByteBuffer data) implements WalMessage {
        public XLogData {
            requireNonNull(walStart, "walStart is null");
            requireNonNull(serverWalEnd, "serverWalEnd is null");
            requireNonNull(serverTime, "serverTime is null");
            data = requireNonNull(data, "data is null").asReadOnlyBuffer();
        }

        /** A fresh read-only view (position 0 .. length) each call. */
        @Override
        public ByteBuffer data() {
            return data.duplicate();
        }

        public int length() {
            return data.remaining();
        }

        /** The position just past this message's bytes. */
        public Lsn walEnd() {
            return walStart.plus(data.remaining());
        }
    }

    /** The server's heartbeat; when {@code replyRequested}, answer with {@link WalStream#sendStatus} at once. */
    record Keepalive(Lsn serverWalEnd, Instant serverTime, boolean replyRequested) implements WalMessage {
        public Keepalive {
            requireNonNull(serverWalEnd, "serverWalEnd is null");
            requireNonNull(serverTime, "serverTime is null");
        }
    }

    /**
     * The streamed timeline ended (the server was promoted past it): all of its WAL has been sent. Continue with
     * {@code START_REPLICATION} on {@code nextTimeline} from {@code nextStart}. The stream is over; the connection is
     * ready for the next command.
     */
    record EndOfTimeline(int nextTimeline, Lsn nextStart) implements WalMessage {
        public EndOfTimeline {
            requireNonNull(nextStart, "nextStart is null");
        }
    }
}
