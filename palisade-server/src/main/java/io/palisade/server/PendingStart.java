package io.palisade.server;

import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A server start that a shutdown hook may have to wait for: the JVM halts once its hooks return, so a hook that comes
 * during {@link PalisadeServer#start} (Ctrl-C, SIGTERM, SIGHUP) waits for it to end before it closes what it started.
 * A start that fails closes what it had built itself. Thread-safe.
 */
final class PendingStart {
    private final CompletableFuture<PalisadeServer> started = new CompletableFuture<>();
    private volatile boolean stopRequested;

    /** Starts the server (on the caller's thread) and records how the start ended. */
    PalisadeServer start(ServerConfig config, Optional<String> bootstrapKey) {
        try {
            PalisadeServer server = PalisadeServer.start(config, bootstrapKey);
            started.complete(server);
            return server;
        } catch (RuntimeException | Error e) {
            started.completeExceptionally(e);
            throw e;
        }
    }

    /** Whether a stop has begun waiting for this start: the server it returns is about to be closed. */
    boolean stopRequested() {
        return stopRequested;
    }

    /**
     * The started server, once its start has ended (at most {@code bound}); empty if the start failed or did not end
     * within the bound (then a line on stderr says what may still run).
     */
    Optional<PalisadeServer> await(Duration bound) {
        stopRequested = true;
        try {
            return Optional.of(started.get(bound.toMillis(), TimeUnit.MILLISECONDS));
        } catch (ExecutionException e) {
            return Optional.empty();
        } catch (TimeoutException e) {
            System.err.println("palisade: the start did not end within " + bound.toSeconds() + " s of the stop; what it"
                    + " started may still run (the next start stops or takes it over)");
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }
}
