package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * A running physical replication stream (START_REPLICATION ... PHYSICAL, CopyBoth). Read it with {@link #next} and
 * report progress with {@link #sendStatus} at least every {@code wal_sender_timeout / 2} (default 30 s), at once when
 * a keepalive asks for a reply; the server drops a silent receiver. While it is active the connection runs no other
 * command. Thread-confined, like its {@link ReplicationConnection}.
 */
public final class WalStream {
    private final ReplicationConnection owner;
    private final WireSession session;
    private final Lsn start;
    private final int timeline;
    private boolean active = true;
    private Optional<WalMessage.EndOfTimeline> pendingEnd;

    WalStream(ReplicationConnection owner, WireSession session, Lsn start, int timeline,
            Optional<WalMessage.EndOfTimeline> pendingEnd) {
        this.owner = owner;
        this.session = session;
        this.start = start;
        this.timeline = timeline;
        this.pendingEnd = pendingEnd;
    }

    /**
     * The next message, waiting at most {@code timeout} ({@link Duration#ZERO} polls); empty if none arrived in time
     * (the stream stays usable). After {@link WalMessage.EndOfTimeline} the stream is over.
     *
     * @throws PgServerException when the server ends the stream with an error (e.g. the WAL was already removed)
     */
    public Optional<WalMessage> next(Duration timeout) {
        requireNonNull(timeout, "timeout is null");
        checkActive();
        if (pendingEnd.isPresent()) {
            WalMessage.EndOfTimeline end = pendingEnd.get();
            pendingEnd = Optional.empty();
            ended();
            return Optional.of(end);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (!session.receive(deadline, "streaming WAL of timeline " + timeline)) {
                return Optional.empty();
            }
            PgStream stream = session.stream();
            switch (stream.type()) {
                case 'd' -> {
                    try {
                        return Optional.of(ReplicationMessages.decode(stream.buffer(), stream.bodyOffset(),
                                stream.bodyLength()));
                    } catch (IllegalArgumentException e) {
                        ended();
                        throw session.protocolViolation(e.getMessage());
                    }
                }
                case 'c' -> {
                    session.writer().start('c').end();
                    session.flush("ending the replication stream");
                    return Optional.of(readEnd().orElseThrow(() -> new PalisadeException(ErrorCode.DRIVER_FAILURE,
                            "PostgreSQL at " + session.target() + " ended the replication stream of timeline "
                                    + timeline + " without naming a next timeline; it is probably shutting down:"
                                    + " reconnect and resume from the last flushed position")));
                }
                case 'E' -> throw failed(session.error());
                case 'N' -> session.notice();
                case 'S' -> session.parameterStatus();
                default -> {
                    ended();
                    throw session.protocolViolation("unexpected message '" + stream.type() + "' in a replication"
                            + " stream");
                }
            }
        }
    }

    /** After both CopyDones: the results up to ReadyForQuery, with the next timeline if the server named one. */
    private Optional<WalMessage.EndOfTimeline> readEnd() {
        List<WireSession.Result> results;
        try {
            results = session.readResults("reading the end of timeline " + timeline);
        } finally {
            ended();
        }
        return endOf(results);
    }

    static Optional<WalMessage.EndOfTimeline> endOf(List<WireSession.Result> results) {
        for (WireSession.Result result : results) {
            if (result.columns().contains("next_tli") && !result.rows().isEmpty()) {
                Row row = result.rows().getFirst();
                return Optional.of(new WalMessage.EndOfTimeline((int) row.getLong("next_tli"),
                        row.getLsn("next_tli_startpos")));
            }
        }
        return Optional.empty();
    }

    private PgServerException failed(PgServerException error) {
        ended();
        try {
            // the server leaves CopyBoth with an error; ReadyForQuery follows unless it also closes the connection
            while (session.receive(PgStream.deadline(Duration.ofSeconds(5)), "reading the end of a failed stream")) {
                if (session.stream().type() == 'Z') {
                    return error;
                }
            }
            session.close();
        } catch (PalisadeException e) {
            // the connection is gone; the server's error is what matters
        }
        return error;
    }

    /**
     * Sends a Standby Status Update: how far we have written, flushed (durably stored: the slot's restart position
     * follows it) and applied. {@code replyRequested} asks the server for an immediate keepalive.
     */
    public void sendStatus(Lsn written, Lsn flushed, Lsn applied, boolean replyRequested) {
        requireNonNull(written, "written is null");
        requireNonNull(flushed, "flushed is null");
        requireNonNull(applied, "applied is null");
        checkActive();
        MessageWriter writer = session.writer().start('d');
        ReplicationMessages.standbyStatus(writer, written, flushed, applied, Instant.now(), replyRequested);
        writer.end();
        session.flush("sending a standby status update");
    }

    /**
     * Ends the stream from our side (CopyDone), discarding WAL still in flight, and waits up to {@code timeout} for the
     * server to finish; the connection is then ready for the next command. Returns the end of timeline if the server
     * reported one. If the server does not finish in time the connection is closed.
     */
    public Optional<WalMessage.EndOfTimeline> stop(Duration timeout) {
        if (!active) {
            return Optional.empty();
        }
        if (pendingEnd.isPresent()) {
            Optional<WalMessage.EndOfTimeline> end = pendingEnd;
            pendingEnd = Optional.empty();
            ended();
            return end;
        }
        session.writer().start('c').end();
        session.flush("ending the replication stream");
        long deadline = PgStream.deadline(timeout);
        while (true) {
            if (!session.receive(deadline, "ending the replication stream")) {
                ended();
                session.close();
                throw new PalisadeException(ErrorCode.TIMEOUT, "PostgreSQL at " + session.target() + " did not end"
                        + " the replication stream within " + timeout + "; the connection is closed");
            }
            switch (session.stream().type()) {
                case 'd', 'N', 'S' -> {}
                case 'c' -> {
                    return readEnd();
                }
                case 'E' -> throw failed(session.error());
                default -> {
                    ended();
                    throw session.protocolViolation("unexpected message '" + session.stream().type()
                            + "' while ending a replication stream");
                }
            }
        }
    }

    /** True until the stream ended (end of timeline, stop, server error) or the connection closed. */
    public boolean isActive() {
        return active && session.isOpen();
    }

    public Lsn start() {
        return start;
    }

    public int timeline() {
        return timeline;
    }

    private void checkActive() {
        if (!active) {
            throw new IllegalStateException("this WAL stream has ended; start a new one");
        }
    }

    private void ended() {
        if (active) {
            active = false;
            owner.streamEnded(this);
        }
    }
}
