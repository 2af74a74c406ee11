package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Backend;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ServerLogin;
import io.palisade.spi.TenantCredentials;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MetadataStore;
import io.palisade.store.SecretBox;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Connection routing for the proxy and the broker on behalf of {@link DatabaseService}: where a database listens
 * (waking a suspended one once however many clients arrive), holding new connections during a move's cutover, the
 * tenant's login from the store, and last-activity bookkeeping. Thread-safe: wakes and holds live in concurrent maps;
 * a wake runs under the database's lock ({@link DatabaseService#withLock}) on a worker.
 */
final class ConnectionRouting {
    private static final Logger log = LoggerFactory.getLogger(DatabaseService.class);

    private final DatabaseService service;
    private final ScaleToZero scaleToZero;
    private final MetadataStore store;
    private final ExecutorService workers;
    private final Map<String, CompletableFuture<Optional<Backend>>> wakes = new ConcurrentHashMap<>();
    private final java.util.concurrent.atomic.AtomicLong wakeCount = new java.util.concurrent.atomic.AtomicLong();
    private final Map<String, CompletableFuture<Void>> holds = new ConcurrentHashMap<>();

    ConnectionRouting(DatabaseService service, ScaleToZero scaleToZero) {
        this.service = requireNonNull(service, "service is null");
        this.scaleToZero = requireNonNull(scaleToZero, "scaleToZero is null");
        this.store = service.store();
        this.workers = service.workers();
    }

    /** See {@link DatabaseService#resolve}. */
    CompletableFuture<Optional<Backend>> resolve(String databaseId) {
        CompletableFuture<Void> hold = holds.get(databaseId);
        if (hold != null) {
            // a move's cutover: the connection waits for the switch (bounded), then goes where the record says
            return hold.copy().completeOnTimeout(null, Hold.LIMIT.toMillis(), TimeUnit.MILLISECONDS)
                    .thenCompose(ignored -> resolve(databaseId, holds.get(databaseId) == hold));
        }
        return resolve(databaseId, false);
    }

    private CompletableFuture<Optional<Backend>> resolve(String databaseId, boolean heldTooLong) {
        if (heldTooLong) {
            log.warn("a connection to {} waited {} for a move's cutover; sending it on", databaseId, Hold.LIMIT);
        }
        return CompletableFuture.supplyAsync(() -> store.find(databaseId), workers).thenCompose(found -> {
            if (found.isEmpty()) {
                return CompletableFuture.completedFuture(Optional.empty());
            }
            DatabaseRecord record = found.get();
            if (record.state() == DatabaseState.RUNNING) {
                return CompletableFuture.completedFuture(backend(record));
            }
            if (record.state() != DatabaseState.SUSPENDED) {
                return CompletableFuture.completedFuture(Optional.empty());
            }
            return wakes.computeIfAbsent(databaseId, id -> CompletableFuture.supplyAsync(() -> {
                try {
                    return service.withLock(id, () -> wake(id));
                } finally {
                    wakes.remove(id);
                }
            }, workers));
        });
    }

    /**
     * New connections to a database wait (in the proxy and the broker) until the hold is released, at most
     * {@link #LIMIT}; then they go where the database record says. Releasing is idempotent.
     */
    final class Hold {
        static final Duration LIMIT = Duration.ofSeconds(30);
        private final String id;
        private final CompletableFuture<Void> gate;

        private Hold(String id, CompletableFuture<Void> gate) {
            this.id = id;
            this.gate = gate;
        }

        void release() {
            holds.remove(id, gate);
            gate.complete(null);
        }
    }

    /** Holds new connections to {@code id} until the returned hold is released (a move's cutover). */
    Hold hold(String id) {
        CompletableFuture<Void> gate = new CompletableFuture<>();
        if (holds.putIfAbsent(id, gate) != null) {
            throw new PalisadeException(ErrorCode.CONFLICT, "connections to " + id + " are already held");
        }
        return new Hold(id, gate);
    }

    /** See {@link DatabaseService#credentials(String)}. */
    CompletableFuture<Optional<TenantCredentials>> credentials(String databaseId) {
        return CompletableFuture.supplyAsync(() -> store.find(databaseId)
                .filter(r -> r.state() == DatabaseState.RUNNING || r.state() == DatabaseState.SUSPENDED)
                .map(service::credentials), workers);
    }

    private static Optional<Backend> backend(DatabaseRecord record) {
        return record.endpoint().map(endpoint -> new Backend(endpoint, record.username(), record.database(),
                record.serverLogin().orElseGet(() -> new ServerLogin(record.username(), record.database()))));
    }

    private Optional<Backend> wake(String id) {
        DatabaseRecord record = store.find(id).orElse(null);
        if (record == null) {
            return Optional.empty();
        }
        if (record.state() == DatabaseState.SUSPENDED) {
            long started = System.nanoTime();
            record = scaleToZero.resumeRecorded(record, service.driver(record));
            wakeCount.incrementAndGet();
            log.info("woke {} in {} ms", id, (System.nanoTime() - started) / 1_000_000);
        }
        return record.state() == DatabaseState.RUNNING ? backend(record) : Optional.empty();
    }

    /** See {@link DatabaseService#wakeCount}. */
    long wakeCount() {
        return wakeCount.get();
    }

    /** See {@link DatabaseService#touch}. */
    void touch(String databaseId) {
        workers.execute(() -> store.touch(databaseId, Instant.now()));
    }

    /** See {@link DatabaseService#verify}. */
    Optional<TenantCredentials> verify(String databaseId, String token) {
        byte[] presented = SecretBox.hash(token).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Optional<DatabaseRecord> record = store.find(databaseId);
        Optional<String> keyAccount = store.accountForKey(token);
        boolean tokenMatches = record.isPresent() && java.security.MessageDigest.isEqual(
                record.get().brokerTokenHash().getBytes(java.nio.charset.StandardCharsets.UTF_8), presented);
        boolean keyMatches = record.isPresent() && keyAccount.isPresent()
                && keyAccount.get().equals(record.get().accountId());
        return tokenMatches || keyMatches ? record.map(service::credentials) : Optional.empty();
    }
}
