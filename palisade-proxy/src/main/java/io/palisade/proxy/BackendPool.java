package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.util.concurrent.EventExecutor;
import io.palisade.spi.Endpoint;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * Logged-in backend connections kept after their client left cleanly, reset with {@code DISCARD ALL}, for the next
 * client of the same database whose login was proven on the host and whose backend login is exactly the same
 * ({@link Key}): that client skips the TCP connect, PostgreSQL's fork and the backend login. Bounds: at most
 * {@code proxy.max-idle-backends-per-database} connections per database (resetting ones included), each closed after
 * {@code proxy.backend-idle-timeout} parked; either being 0 disables the pool. {@link #evict} (suspend, delete,
 * rotation, restore, a move's cutover, a restart after a crash, forgetting a database) closes a database's parked
 * connections and those being reset, and makes every connection logged in before it unpoolable, by a per-database
 * generation that is compared when a connection is offered and when it is taken.
 *
 * <p>A connection stays on the event loop its first client was served on (a Netty channel cannot change loops), so
 * the pool is partitioned by event loop: a client takes only a connection parked on its own loop. Meters:
 * {@code palisade.proxy.backends.pooled} (connections reset and parked), {@code palisade.proxy.backends.reused}
 * (clients served by a parked connection), {@code palisade.proxy.backends.idle} (gauge: parked or resetting).
 *
 * <p>Thread-safe: each loop's partition is touched only on that loop; the per-database generations and counts are
 * atomic.
 */
final class BackendPool {
    /**
     * What a parked connection is interchangeable by: the database, the instance it is connected to, every startup
     * parameter the backend received (its user and database names included, so a shared server's login), the tenant
     * user name shown in place of the server's, and a digest of the password it logged in with.
     */
    record Key(String databaseId, Endpoint endpoint, Map<String, String> startup, String sessionAuthorization,
            String credential) {
        Key {
            requireNonNull(databaseId, "databaseId is null");
            requireNonNull(endpoint, "endpoint is null");
            startup = Map.copyOf(requireNonNull(startup, "startup is null"));
            requireNonNull(sessionAuthorization, "sessionAuthorization is null");
            requireNonNull(credential, "credential is null");
        }

        static String credentialDigest(String password) {
            try {
                byte[] digest = MessageDigest.getInstance("SHA-256").digest(password.getBytes(StandardCharsets.UTF_8));
                return java.util.HexFormat.of().formatHex(digest);
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-256 is not available in this JDK", e);
            }
        }
    }

    /** What the client of a reused connection is shown (ParameterStatus) and where its cancel requests go. */
    record Login(Map<String, String> parameters, int processId, int secretKey) {
        Login {
            parameters = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(
                    requireNonNull(parameters, "parameters is null")));
        }
    }

    /** One database's generation and what the pool holds of it. */
    private record Database(long generation, PoolCounts counts) {}

    /**
     * The most ParameterStatus names a pooled connection carries (PostgreSQL 16 reports 15): a server that reports
     * more (only a hostile one can) is never pooled, so it cannot make the proxy hold unbounded memory for it.
     */
    static final int MAX_REPORTS = 64;
    /** The longest ParameterStatus name plus value a pooled connection carries, in chars. */
    static final int MAX_REPORT_CHARS = 4096;

    /** Whether a login's reports are within {@link #MAX_REPORTS} and {@link #MAX_REPORT_CHARS}. */
    static boolean fits(Map<String, String> parameters) {
        if (parameters.size() > MAX_REPORTS) {
            return false;
        }
        for (Map.Entry<String, String> entry : parameters.entrySet()) {
            if (entry.getKey().length() + entry.getValue().length() > MAX_REPORT_CHARS) {
                return false;
            }
        }
        return true;
    }

    /** How long {@link #giveWay} waits for the server to end the connection it gives up before it closes it. */
    static final Duration GIVE_WAY_WAIT = Duration.ofSeconds(1);

    /** How long {@link #evict} waits for the parked connections to close. */
    static final Duration CLOSE_WAIT = Duration.ofSeconds(2);

    private final Duration idleTimeout;
    private final int maxIdlePerDatabase;
    private final AtomicLong generations = new AtomicLong();
    private final ConcurrentHashMap<String, Database> databases = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<EventExecutor, Map<Key, ArrayDeque<PooledBackend>>> loops =
            new ConcurrentHashMap<>();
    private final AtomicInteger idle = new AtomicInteger();
    /**
     * What the pool holds per server. Never pruned: one small entry per server a connection was ever pooled on (a vm's
     * address is its network slot's, reused; a process or shared server's is a port the kernel chose).
     */
    private final ConcurrentHashMap<Endpoint, PoolCounts> servers = new ConcurrentHashMap<>();
    /** Connections given back whose server has not closed them yet (their slots may still be taken). */
    private final Set<PooledBackend> givingBack = ConcurrentHashMap.newKeySet();
    /** Connections offered and being reset, not parked yet (they hold their server's slots as parked ones do). */
    private final Set<PooledBackend> resetting = ConcurrentHashMap.newKeySet();
    private final Counter pooled;
    private final Counter reused;

    BackendPool(Duration idleTimeout, int maxIdlePerDatabase, MeterRegistry registry) {
        this.idleTimeout = requireNonNull(idleTimeout, "idleTimeout is null");
        this.maxIdlePerDatabase = maxIdlePerDatabase;
        this.pooled = Counter.builder("palisade.proxy.backends.pooled")
                .description("backend connections reset with DISCARD ALL and parked after their client left")
                .register(registry);
        this.reused = Counter.builder("palisade.proxy.backends.reused")
                .description("client connections served by a parked backend connection instead of a new one")
                .register(registry);
        Gauge.builder("palisade.proxy.backends.idle", idle, AtomicInteger::get)
                .description("backend connections parked or being reset, for all databases")
                .register(registry);
    }

    boolean enabled() {
        return maxIdlePerDatabase > 0 && !idleTimeout.isZero();
    }

    Duration idleTimeout() {
        return idleTimeout;
    }

    /** The database's current generation: record it at login, a connection of an older one is never pooled. */
    long generation(String databaseId) {
        return database(databaseId).generation;
    }

    private Database database(String databaseId) {
        return databases.computeIfAbsent(databaseId,
                id -> new Database(generations.incrementAndGet(), new PoolCounts()));
    }

    /**
     * Offers a connection whose client left cleanly: when the database is below its bound and its generation is
     * unchanged, replaces {@code current} in the connection's pipeline by a {@link PooledBackend} that resets it and
     * then parks it here; returns false (nothing done; the caller keeps the connection) otherwise. On the
     * connection's event loop.
     */
    boolean offer(Channel channel, ChannelHandler current, Key key, long generation, Login login) {
        if (!enabled() || !channel.isActive() || !fits(login.parameters())) {
            return false;
        }
        // before the generation is read: an eviction that starts after that read then finds this loop (closeParked)
        partition(channel.eventLoop());
        Database database = databases.get(key.databaseId());
        if (database == null || database.generation != generation) {
            return false;
        }
        if (!database.counts().pool(maxIdlePerDatabase)) {
            return false;
        }
        PoolCounts server = servers.computeIfAbsent(key.endpoint(), e -> new PoolCounts());
        server.pool();
        idle.incrementAndGet();
        PooledBackend pooledBackend = new PooledBackend(this, key, generation, login, database.counts(), server);
        channel.pipeline().replace(current, "pooled", pooledBackend);
        resetting.add(pooledBackend);
        pooledBackend.reset();
        return true;
    }

    /** The connection finished its reset: it waits here for a client. On its event loop. */
    void park(PooledBackend backend) {
        resetting.remove(backend);
        Database database = databases.get(backend.key().databaseId());
        if (database == null || database.generation != backend.generation()) {
            backend.close();
            return;
        }
        pooled.increment();
        partition(backend.channel().eventLoop()).computeIfAbsent(backend.key(), k -> new ArrayDeque<>())
                .addFirst(backend);
    }

    /**
     * A parked connection for {@code key} on {@code loop}, most recently parked first, already removed from the pool
     * and its idle timer stopped; null when there is none. On {@code loop}.
     */
    PooledBackend take(EventExecutor loop, Key key) {
        Map<Key, ArrayDeque<PooledBackend>> partition = loops.get(loop);
        if (partition == null) {
            return null;
        }
        ArrayDeque<PooledBackend> parked = partition.get(key);
        Database database = databases.get(key.databaseId());
        while (parked != null && !parked.isEmpty()) {
            PooledBackend backend = parked.pollFirst();
            if (parked.isEmpty()) {
                partition.remove(key);
            }
            if (database != null && database.generation == backend.generation() && backend.take()) {
                reused.increment();
                return backend;
            }
            backend.close();
        }
        return null;
    }

    /** A connection left the pool (closed, timed out, or taken), parked or being reset: forgets it. On its loop. */
    void removed(PooledBackend backend) {
        resetting.remove(backend);
        Map<Key, ArrayDeque<PooledBackend>> partition = loops.get(backend.channel().eventLoop());
        if (partition != null) {
            ArrayDeque<PooledBackend> parked = partition.get(backend.key());
            if (parked != null && parked.remove(backend) && parked.isEmpty()) {
                partition.remove(backend.key());
            }
        }
    }

    /** Counts a connection out of the bounds (once per connection, when it closes or is taken). */
    void released() {
        idle.decrementAndGet();
    }

    private Map<Key, ArrayDeque<PooledBackend>> partition(EventExecutor loop) {
        return loops.computeIfAbsent(loop, l -> new HashMap<>());
    }

    /**
     * Ends the database's generation at once, so nothing logged in before this call is parked or handed out any
     * more, and closes its parked connections and those being reset on their loops; with {@code wait} (never from an
     * event loop) it waits (at most {@link #CLOSE_WAIT}) until they are closed, so that a suspend or a move that
     * follows finds them gone. Any thread.
     */
    void evict(String databaseId, boolean wait) {
        CompletableFuture<Void> closed = evictNow(databaseId);
        if (wait && !onAnEventLoop()) {
            try {
                closed.get(CLOSE_WAIT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException | TimeoutException e) {
                // bounded: they close on their own right after
            }
        }
    }

    /**
     * As {@link #evict} without waiting: the future completes when the server has let every such connection go
     * (each one's Terminate answered by the server closing it, at most {@link #GIVE_WAY_WAIT}). Any thread.
     */
    private CompletableFuture<Void> evictNow(String databaseId) {
        // a generation nothing logged in before can have; the counts go on, so that what this gives back is seen by
        // a login the server refuses meanwhile (PoolCounts.mayFreeSlots)
        databases.computeIfPresent(databaseId,
                (id, old) -> new Database(generations.incrementAndGet(), old.counts()));
        return closeParked(ofDatabase(databaseId));
    }

    /** Forgets a deleted database: as {@link #evict}, without waiting, and drops what it knew of it. Any thread. */
    void forget(String databaseId) {
        databases.remove(databaseId);
        closeParked(ofDatabase(databaseId));
    }

    /**
     * A server answered a login of the database with {@code 53300}: ends the database's parked connections, and with
     * {@code serverWide} (the whole server is full) every connection parked on that server, of whichever database (on
     * a shared server, other tenants' parked connections hold its slots too). Unlike {@link #evict} it starts no new
     * generation: logins under way stay valid. The future completes when the server has let go of those, and of any
     * such connections given back before (by a concurrent refusal, a give-way or an eviction) that it still held
     * ({@link #closeParked}): a refused login that logs in again then finds their slots free. Any thread.
     */
    CompletableFuture<Void> serverFull(String databaseId, Endpoint endpoint, boolean serverWide) {
        return closeParked(slotHolders(databaseId, endpoint, serverWide));
    }

    /** The parked connections that may hold what a refused login lacked: see {@link #serverFull}. */
    private static Predicate<Key> slotHolders(String databaseId, Endpoint endpoint, boolean serverWide) {
        return ofDatabase(databaseId).or(key -> serverWide && key.endpoint().equals(endpoint));
    }

    private static Predicate<Key> ofDatabase(String databaseId) {
        return key -> key.databaseId().equals(databaseId);
    }

    /** What {@link #mayFreeSlots} compares with: take it right before a backend login starts. Any thread. */
    PoolCounts.Mark mark(String databaseId, Endpoint endpoint) {
        return PoolCounts.mark(counts(databaseId), servers.getOrDefault(endpoint, PoolCounts.NONE));
    }

    /**
     * Whether {@link #serverFull} for a login of the database to {@code endpoint} refused as too many may free what it
     * lacked: see {@link PoolCounts#mayFreeSlots}. Any thread.
     */
    boolean mayFreeSlots(String databaseId, Endpoint endpoint, boolean serverWide, PoolCounts.Mark since) {
        return PoolCounts.mayFreeSlots(counts(databaseId), servers.getOrDefault(endpoint, PoolCounts.NONE), serverWide,
                since);
    }

    private PoolCounts counts(String databaseId) {
        Database database = databases.get(databaseId);
        return database == null ? PoolCounts.NONE : database.counts();
    }

    /**
     * Makes room for a new backend login of {@code databaseId} by ending one of its parked connections, one parked
     * on {@code loop} if there is one, else on another loop: called when a client found nothing to reuse while the
     * database's clients and parked connections together already reach its limit. The future completes when the
     * server has let that connection go (its Terminate answered by the server closing, at most
     * {@link #GIVE_WAY_WAIT}), or at once when none is parked (one being reset is not taken). On {@code loop}.
     */
    CompletableFuture<Void> giveWay(String databaseId, EventExecutor loop) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        List<Map.Entry<EventExecutor, Map<Key, ArrayDeque<PooledBackend>>>> order = new ArrayList<>();
        for (Map.Entry<EventExecutor, Map<Key, ArrayDeque<PooledBackend>>> entry : loops.entrySet()) {
            order.add(entry.getKey() == loop ? 0 : order.size(), entry);
        }
        giveWay(databaseId, order.iterator(), done);
        return done;
    }

    private void giveWay(String databaseId,
            Iterator<Map.Entry<EventExecutor, Map<Key, ArrayDeque<PooledBackend>>>> loopsLeft,
            CompletableFuture<Void> done) {
        if (!loopsLeft.hasNext()) {
            done.complete(null);
            return;
        }
        Map.Entry<EventExecutor, Map<Key, ArrayDeque<PooledBackend>>> next = loopsLeft.next();
        onLoop(next.getKey(), done, () -> {
            List<PooledBackend> oldest = takeParked(next.getValue(), ofDatabase(databaseId), 1);
            if (oldest.isEmpty()) {
                giveWay(databaseId, loopsLeft, done);
            } else {
                terminate(oldest).whenComplete((ignored, error) -> done.complete(null));
            }
        });
    }

    /** Runs {@code task} on {@code loop}; completes {@code done} instead when the loop is shutting down. */
    private static void onLoop(EventExecutor loop, CompletableFuture<Void> done, Runnable task) {
        Runnable guarded = () -> {
            try {
                task.run();
            } catch (RejectedExecutionException e) {
                done.complete(null); // the proxy is closing: its channels close with it
            }
        };
        if (loop.inEventLoop()) {
            guarded.run();
            return;
        }
        try {
            loop.execute(guarded);
        } catch (RejectedExecutionException e) {
            done.complete(null);
        }
    }

    /**
     * Removes from one loop's partition at most {@code limit} parked connections whose key {@code which} accepts,
     * the least recently parked of a key first. On that loop.
     */
    private static List<PooledBackend> takeParked(Map<Key, ArrayDeque<PooledBackend>> partition, Predicate<Key> which,
            int limit) {
        List<PooledBackend> taken = new ArrayList<>();
        Iterator<Map.Entry<Key, ArrayDeque<PooledBackend>>> keys = partition.entrySet().iterator();
        while (keys.hasNext() && taken.size() < limit) {
            Map.Entry<Key, ArrayDeque<PooledBackend>> parked = keys.next();
            if (which.test(parked.getKey())) {
                while (taken.size() < limit && !parked.getValue().isEmpty()) {
                    taken.add(parked.getValue().pollLast());
                }
                if (parked.getValue().isEmpty()) {
                    keys.remove();
                }
            }
        }
        return taken;
    }

    /**
     * Sends each connection Terminate; the future completes when the server has closed them all (each one at most
     * {@link #GIVE_WAY_WAIT}, then closed by us).
     */
    private CompletableFuture<Void> terminate(List<PooledBackend> backends) {
        List<CompletableFuture<Void>> released = new ArrayList<>();
        for (PooledBackend backend : backends) {
            givingBack.add(backend);
            backend.terminate(GIVE_WAY_WAIT).addListener(f -> givingBack.remove(backend));
            released.add(closed(backend.channel()));
        }
        return CompletableFuture.allOf(released.toArray(CompletableFuture[]::new));
    }

    /** Completes when {@code channel} has closed. */
    private static CompletableFuture<Void> closed(Channel channel) {
        CompletableFuture<Void> closed = new CompletableFuture<>();
        channel.closeFuture().addListener(f -> closed.complete(null));
        return closed;
    }

    private boolean onAnEventLoop() {
        for (EventExecutor loop : loops.keySet()) {
            if (loop.inEventLoop()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Ends the parked connections whose key {@code which} accepts, and those being reset, on their loops; see
     * {@link #evictNow}. The future also waits for those {@code which} accepts that were given back earlier and are
     * not closed yet: each loop's connections are given back on that loop only, so its task sees every one given back
     * before it.
     */
    private CompletableFuture<Void> closeParked(Predicate<Key> which) {
        List<CompletableFuture<Void>> closed = new ArrayList<>();
        for (Map.Entry<EventExecutor, Map<Key, ArrayDeque<PooledBackend>>> entry : loops.entrySet()) {
            CompletableFuture<Void> done = new CompletableFuture<>();
            closed.add(done);
            EventExecutor loop = entry.getKey();
            onLoop(loop, done, () -> {
                List<CompletableFuture<Void>> released = new ArrayList<>();
                for (PooledBackend earlier : onLoop(loop, givingBack, which)) {
                    released.add(closed(earlier.channel()));
                }
                List<PooledBackend> taken = takeParked(entry.getValue(), which, Integer.MAX_VALUE);
                taken.addAll(onLoop(loop, resetting, which));
                released.add(terminate(taken));
                CompletableFuture.allOf(released.toArray(CompletableFuture[]::new))
                        .whenComplete((ignored, error) -> done.complete(null));
            });
        }
        return CompletableFuture.allOf(closed.toArray(CompletableFuture[]::new));
    }

    /** The connections of {@code backends} on {@code loop} whose key {@code which} accepts. */
    private static List<PooledBackend> onLoop(EventExecutor loop, Set<PooledBackend> backends, Predicate<Key> which) {
        List<PooledBackend> found = new ArrayList<>();
        for (PooledBackend backend : backends) {
            if (backend.channel().eventLoop() == loop && which.test(backend.key())) {
                found.add(backend);
            }
        }
        return found;
    }

    /** Connections parked or being reset, for one database. */
    int idle(String databaseId) {
        return counts(databaseId).pooled();
    }

    /** How many of the database's connections are parked on each event loop, read on that loop (for tests). */
    List<Integer> parkedPerLoop(String databaseId) {
        List<Integer> counts = new ArrayList<>();
        for (Map.Entry<EventExecutor, Map<Key, ArrayDeque<PooledBackend>>> entry : loops.entrySet()) {
            counts.add(entry.getKey().submit(() -> entry.getValue().entrySet().stream()
                    .filter(parked -> parked.getKey().databaseId().equals(databaseId))
                    .mapToInt(parked -> parked.getValue().size()).sum()).syncUninterruptibly().getNow());
        }
        return counts;
    }

    /** Connections parked or being reset, in total. */
    int idle() {
        return idle.get();
    }
}
