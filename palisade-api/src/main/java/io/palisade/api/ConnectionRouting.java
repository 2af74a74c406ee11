package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Backend;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ServerLogin;
import io.palisade.spi.TenantCredentials;
import io.palisade.spi.VerifiedLogins;
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
 * tenant's login from the store, and last-activity bookkeeping. Where a running database listens and broker tokens that
 * verified are remembered for a few seconds ({@link RunningBackends}, {@link VerifiedLogins}) and forgotten when the
 * database's lock is taken or its connections are invalidated; failed checks are never remembered. Thread-safe: wakes,
 * holds and what is remembered live in concurrent maps; a wake runs under the database's lock
 * ({@link DatabaseService#withLock}) on a worker.
 */
final class ConnectionRouting {
    private static final Logger log = LoggerFactory.getLogger(DatabaseService.class);
    /** Last activity is written at most this often per database (idle suspension counts in tens of seconds). */
    static final Duration TOUCH_INTERVAL = Duration.ofSeconds(1);

    private final DatabaseService service;
    private final ScaleToZero scaleToZero;
    private final MetadataStore store;
    private final ExecutorService workers;
    private final Map<String, CompletableFuture<Optional<Backend>>> wakes = new ConcurrentHashMap<>();
    private final java.util.concurrent.atomic.AtomicLong wakeCount = new java.util.concurrent.atomic.AtomicLong();
    private final Map<String, CompletableFuture<Void>> holds = new ConcurrentHashMap<>();
    /** Broker tokens and API keys that verified lately, so a busy client costs no store query per request. */
    private final VerifiedLogins verified = new VerifiedLogins();
    /** Where running databases listen, so a busy client costs no store query per request to route. */
    private final RunningBackends backends = new RunningBackends();
    /** When each database's last activity was last written (nanoTime), so a busy client writes it once a second. */
    private final Map<String, Long> touched = new ConcurrentHashMap<>();

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
            // a move's cutover or a suspend: the connection waits for it (bounded), then goes where the record says
            return hold.copy().completeOnTimeout(null, Hold.LIMIT.toMillis(), TimeUnit.MILLISECONDS)
                    .thenCompose(ignored -> resolve(databaseId, holds.get(databaseId) == hold));
        }
        return resolve(databaseId, false);
    }

    private CompletableFuture<Optional<Backend>> resolve(String databaseId, boolean heldTooLong) {
        if (heldTooLong) {
            log.warn("a connection to {} waited {} for a move's cutover or a suspend; sending it on", databaseId,
                    Hold.LIMIT);
        }
        // nothing is served or kept while the database's lock is held: every change of state or endpoint is under it
        if (!service.isLocked(databaseId)) {
            Optional<Backend> known = backends.find(databaseId);
            if (known.isPresent()) {
                return CompletableFuture.completedFuture(known);
            }
        }
        long stamp = backends.stamp();
        boolean unlocked = !service.isLocked(databaseId);
        return CompletableFuture.supplyAsync(() -> store.find(databaseId), workers).thenCompose(found -> {
            if (found.isEmpty()) {
                return CompletableFuture.completedFuture(Optional.empty());
            }
            DatabaseRecord record = found.get();
            if (record.state() == DatabaseState.RUNNING) {
                Optional<Backend> backend = backend(record);
                if (unlocked) {
                    backend.ifPresent(b -> backends.remember(stamp, databaseId, b));
                }
                return CompletableFuture.completedFuture(backend);
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

    /** Holds new connections to {@code id} until the returned hold is released (a move's cutover, a suspend). */
    Hold hold(String id) {
        CompletableFuture<Void> gate = new CompletableFuture<>();
        if (holds.putIfAbsent(id, gate) != null) {
            throw new PalisadeException(ErrorCode.CONFLICT, "connections to " + id + " are already held");
        }
        return new Hold(id, gate);
    }

    /** See {@link DatabaseService#connectionsHeld}. */
    boolean held(String id) {
        return holds.containsKey(id);
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

    /**
     * See {@link DatabaseService#touch}. Written at most once per {@link #TOUCH_INTERVAL} per database: idle suspension
     * counts in tens of seconds, and a write per request would cost the store a commit each time.
     */
    void touch(String databaseId) {
        long now = System.nanoTime();
        Long last = touched.get(databaseId);
        if (last != null && now - last < TOUCH_INTERVAL.toNanos()) {
            return;
        }
        touched.put(databaseId, now);
        workers.execute(() -> store.touch(databaseId, Instant.now()));
    }

    /**
     * Drops what is remembered of a database (where it listens, verified tokens, the last activity write): called when
     * its lock is taken, after its secrets change or it goes, and whenever its connections are invalidated.
     */
    void forget(String databaseId) {
        backends.forget(databaseId);
        verified.forget(databaseId);
        touched.remove(databaseId);
    }

    /**
     * See {@link DatabaseService#verify}. A token that verified within {@link VerifiedLogins#TTL} (and nothing about
     * the database changed since) is answered from memory; any other goes through both store lookups as before.
     */
    Optional<TenantCredentials> verify(String databaseId, String token) {
        String tokenHash = SecretBox.hash(token);
        Optional<TenantCredentials> known = verified.find(databaseId, tokenHash);
        if (known.isPresent()) {
            return known;
        }
        long stamp = verified.stamp();
        Optional<TenantCredentials> checked = check(databaseId, token, tokenHash);
        checked.ifPresent(credentials -> verified.remember(stamp, databaseId, tokenHash, credentials));
        return checked;
    }

    private Optional<TenantCredentials> check(String databaseId, String token, String tokenHash) {
        byte[] presented = tokenHash.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Optional<DatabaseRecord> record = store.find(databaseId);
        Optional<String> keyAccount = store.accountForKey(token);
        boolean tokenMatches = record.isPresent() && java.security.MessageDigest.isEqual(
                record.get().brokerTokenHash().getBytes(java.nio.charset.StandardCharsets.UTF_8), presented);
        boolean keyMatches = record.isPresent() && keyAccount.isPresent()
                && keyAccount.get().equals(record.get().accountId());
        return tokenMatches || keyMatches ? record.map(service::credentials) : Optional.empty();
    }
}
