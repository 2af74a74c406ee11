package io.palisade.backup;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Cancels one base backup from another thread: records why, and aborts the connection it streams from, so that a
 * backup blocked on a server that stopped answering (suspended, stopped) ends at once instead of at its read timeout
 * while it holds the host's base backup slot. Thread-safe.
 */
final class BaseBackupCancel {
    private final AtomicReference<String> reason = new AtomicReference<>();
    private final AtomicReference<Runnable> abort = new AtomicReference<>();

    /** Cancels with {@code why} (the first reason wins) and aborts the connection, if one is streaming. */
    void cancel(String why) {
        reason.compareAndSet(null, why);
        Runnable connection = abort.getAndSet(null);
        if (connection != null) {
            connection.run();
        }
    }

    boolean cancelled() {
        return reason.get() != null;
    }

    /** The connection the backup now streams from; aborted at once when the backup was already cancelled. */
    void streamingFrom(Runnable abortConnection) {
        abort.set(abortConnection);
        if (cancelled()) {
            cancel(reason.get());
        }
    }

    /** The backup no longer streams (the connection is closed by its owner). */
    void doneStreaming() {
        abort.set(null);
    }

    /** Throws the error a cancelled backup ends with ({@code what}: the backup's id, or "of" its database). */
    void throwIfCancelled(String what) {
        Optional<PalisadeException> cancelled = failure(what, null);
        if (cancelled.isPresent()) {
            throw cancelled.get();
        }
    }

    /** The error a cancelled backup ends with; empty when it was not cancelled. */
    Optional<PalisadeException> failure(String backupId, Throwable cause) {
        String why = reason.get();
        return why == null ? Optional.empty()
                : Optional.of(new PalisadeException(ErrorCode.CONFLICT, "base backup " + backupId + " was cancelled: "
                        + why, cause));
    }
}
