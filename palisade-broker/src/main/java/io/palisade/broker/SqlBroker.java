package io.palisade.broker;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.javalin.Javalin;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.palisade.broker.ConnectionPool.Lease;
import io.palisade.broker.pg.PgConnection;
import io.palisade.broker.pg.PgError;
import io.palisade.broker.pg.QueryResult;
import io.palisade.spi.Backend;
import io.palisade.spi.BackendResolver;
import io.palisade.spi.BrokerTokenVerifier;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ServerDatabases;
import io.palisade.spi.ServerLogin;
import io.palisade.spi.TenantAuthenticator;
import io.palisade.spi.TenantCredentials;
import io.palisade.spi.VerifiedLogins;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * SQL over HTTP for clients that cannot open a PostgreSQL socket: Neon's {@code POST /sql} and WebSocket transport
 * (what {@code @neondatabase/serverless} speaks, unmodified) and PandaStack's broker routes under
 * {@code /v1/databases/{id}/proxy} ({@code broker_url}).
 *
 * <p>Nothing is spent on a tenant before the caller is authenticated on the host: {@code /sql} and {@code /v2} check
 * the user and password against {@link TenantAuthenticator} (the store; nothing is woken or contacted), the PandaStack
 * routes check the broker token (or the owning account's API key) with {@link BrokerTokenVerifier}, and only then is a
 * request body read, a backend resolved (which wakes a suspended instance) or a connection opened. An unknown database,
 * a wrong password and a wrong token get the same answer. A {@code /sql} user and password that passed are remembered
 * for a few seconds ({@link VerifiedLogins}, forgotten on {@link #evict}); a failure is never remembered. A role other
 * than the tenant's own cannot be checked on the host: it is refused like a wrong password. Thread-safe;
 * {@link #close()} closes every pooled connection and open WebSocket session.
 */
public final class SqlBroker implements AutoCloseable {
    private static final String DATABASE_REQUESTS = "palisade.broker.database.requests";
    private static final Logger log = LoggerFactory.getLogger(SqlBroker.class);
    /** Command tags after which a pooled session may carry state into the next request. */
    private static final Set<String> SESSION_CHANGING = Set.of("SET", "RESET", "PREPARE", "LISTEN", "DECLARE",
            "CREATE", "DO", "LOAD", "DEALLOCATE", "UNLISTEN", "CALL", "DISCARD", "CLOSE");
    private static final TenantCredentials DECOY = new TenantCredentials("\0", "\0", "\0decoy");

    final BrokerConfig config;
    final BackendResolver resolver;
    final TenantAuthenticator authenticator;
    final BrokerTokenVerifier verifier;
    final MeterRegistry registry;
    final ObjectMapper json = JsonValues.mapper();
    final ConnectionPool pool;
    final Admission requests;
    private final NeonWebSocket webSocket;
    /** Logins that passed lately, so a busy {@code /sql} client costs no store query per request to check. */
    private final VerifiedLogins verified = new VerifiedLogins();
    private final java.util.Map<String, Timer> timers = new java.util.concurrent.ConcurrentHashMap<>();
    private volatile ServerDatabases serverDatabases;

    public SqlBroker(BrokerConfig config, BackendResolver resolver, TenantAuthenticator authenticator,
            BrokerTokenVerifier verifier, MeterRegistry registry) {
        this.config = requireNonNull(config, "config is null");
        this.resolver = requireNonNull(resolver, "resolver is null");
        this.authenticator = requireNonNull(authenticator, "authenticator is null");
        this.requests = new Admission(config.maxConcurrentRequests(), config.maxConcurrentRequestsPerDatabase());
        this.verifier = requireNonNull(verifier, "verifier is null");
        this.registry = requireNonNull(registry, "registry is null");
        this.pool = new ConnectionPool(config, registry);
        this.webSocket = new NeonWebSocket(this);
    }

    /**
     * Adds the broker's routes to an app that has not started yet: {@code OPTIONS|POST /sql}, the WebSocket at
     * {@code /v2}, and PandaStack's routes under {@link PandaHttp#BASE} ({@code v1/query|exec|transaction|health|info},
     * {@code v1/databases[/{name}]}).
     */
    public void register(Javalin app) {
        NeonHttp neon = new NeonHttp(this);
        app.options("/sql", neon::preflight);
        app.post("/sql", neon::handle);
        app.get("/sql", neon::notAllowed);
        app.ws("/v2", webSocket::configure);
        new PandaHttp(this).register(app);
    }

    /** Where the {@code v1/databases} routes create and drop databases; without it they answer 501. */
    public void setServerDatabases(ServerDatabases serverDatabases) {
        this.serverDatabases = requireNonNull(serverDatabases, "serverDatabases is null");
    }

    Optional<ServerDatabases> serverDatabases() {
        return Optional.ofNullable(serverDatabases);
    }

    /** Closes the idle pooled connections of a database (call after rotating its password, moving or deleting it). */
    public void evict(String databaseId) {
        verified.forget(requireNonNull(databaseId, "databaseId is null"));
        pool.evict(databaseId);
    }

    /** Forgets a deleted database: its verified logins, its pool (with its gauges) and its request counter. */
    public void forget(String databaseId) {
        verified.forget(requireNonNull(databaseId, "databaseId is null"));
        pool.forget(databaseId);
        Counter requests = registry.find(DATABASE_REQUESTS).tag("database", databaseId).counter();
        if (requests != null) {
            registry.remove(requests);
        }
    }

    /** Backend connections the broker holds open for a database (idle and in use). */
    public int openConnections(String databaseId) {
        return pool.openConnections(databaseId);
    }

    /** WebSocket sessions currently relaying. */
    public int openWebSocketSessions() {
        return webSocket.openSessions();
    }

    @Override
    public void close() {
        webSocket.close();
        pool.close();
    }

    /** The caller may not use this database: unknown id, wrong password or wrong token — never said which. */
    static final class NoAccess extends Exception {
        NoAccess() {
            super("no access", null, false, false);
        }
    }

    Backend resolve(String databaseId) throws NoAccess {
        Optional<Backend> endpoint = await(resolver.resolve(databaseId), "the database did not become ready",
                "resolve the database");
        if (endpoint.isEmpty()) {
            throw new NoAccess();
        }
        resolver.touch(databaseId);
        // per database (the id is a known one here, so the series are bounded by the live databases)
        Counter.builder(DATABASE_REQUESTS)
                .description("SQL-over-HTTP requests and WebSocket sessions that reached this database")
                .tag("database", databaseId)
                .register(registry)
                .increment();
        return endpoint.get();
    }

    /** The login to send to the server for the caller's user and database; a user not the tenant's is no access. */
    static ServerLogin serverLogin(Backend backend, String user, String database) throws NoAccess {
        Optional<ServerLogin> login = backend.map(user, database);
        if (login.isEmpty()) {
            throw new NoAccess();
        }
        return login.get();
    }

    /** A caller the host let through: the tenant's user and password, checked against the store. Hides the password. */
    record Access(String databaseId, String user, String database, String password) {
        Access {
            requireNonNull(databaseId, "databaseId is null");
            requireNonNull(user, "user is null");
            requireNonNull(database, "database is null");
            requireNonNull(password, "password is null");
        }

        @Override
        public String toString() {
            return "Access[" + databaseId + ", user=" + user + ", database=" + database + "]";
        }
    }

    /**
     * Checks a login on the host before anything is spent on the database: the tenant's user and password (compared
     * in constant time; an unknown id is compared against a decoy, so it costs the same). Throws {@link NoAccess} for
     * everything else, other roles included. A user and password that passed within {@link VerifiedLogins#TTL} (and
     * nothing was {@link #evict evicted} since) pass from memory; anything else is checked against the store as before.
     */
    Access authenticate(String databaseId, String user, String database, String password) throws NoAccess {
        String secretHash = HexFormat.of().formatHex(sha256(user.length() + ":" + user + ":" + password));
        if (verified.find(databaseId, secretHash).isPresent()) {
            return new Access(databaseId, user, database, password);
        }
        long stamp = verified.stamp();
        Optional<TenantCredentials> found = await(authenticator.credentials(databaseId),
                "the login check did not answer", "check the login");
        TenantCredentials expected = found.orElse(DECOY);
        boolean passwordMatches = MessageDigest.isEqual(sha256(password), sha256(expected.password()));
        boolean userMatches = MessageDigest.isEqual(sha256(user), sha256(expected.username()));
        if (found.isPresent() && userMatches && passwordMatches) {
            verified.remember(stamp, databaseId, secretHash, found.get());
            return new Access(databaseId, user, database, password);
        }
        // any other role, even one the tenant made on its own server, is refused like a wrong password: the host can
        // check no other login, and letting it through to PostgreSQL would spend the tenant's share unauthenticated
        throw new NoAccess();
    }

    /** The future's value within the connect timeout; {@code late} and {@code doing} name what failed. */
    private <T> T await(java.util.concurrent.CompletableFuture<T> future, String late, String doing) {
        try {
            return future.get(config.connectTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new PalisadeException(ErrorCode.NOT_READY, late + " within " + config.connectTimeout().toSeconds()
                    + " s; try again");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while trying to " + doing);
        } catch (ExecutionException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "could not " + doing + ": " + e.getCause().getMessage(),
                    e.getCause());
        }
    }

    private static byte[] sha256(String value) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(value.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 missing from this JDK", e);
        }
    }

    /** A pooled connection logged in as the caller; the backend verifies the password when it opens a new one. */
    Lease login(Access access) throws NoAccess, IOException {
        return login(resolve(access.databaseId()), access);
    }

    /** As {@link #login(Access)} on a backend already resolved. */
    Lease login(Backend backend, Access access) throws NoAccess, IOException {
        ServerLogin login = serverLogin(backend, access.user(), access.database());
        String password = access.password();
        try {
            return pool.acquire(access.databaseId(),
                    pool.key(backend.endpoint(), login.user(), login.database(), password), password);
        } catch (PgError e) {
            if (e.isAuthenticationFailure()) {
                throw new NoAccess();
            }
            throw e;
        }
    }

    /**
     * Gives a connection back to the pool, first ending any transaction the caller left open and resetting the
     * session if a statement may have changed it.
     */
    void giveBack(Lease lease, boolean sessionChanged) {
        PgConnection connection = lease.connection;
        try {
            if (connection.isReusable() && connection.transactionStatus() != 'I') {
                connection.simpleQuery("ROLLBACK", 1, 1 << 20, PgConnection.Guard.timeout(config.connectTimeout()));
            }
            if (connection.isReusable() && sessionChanged) {
                connection.simpleQuery("DISCARD ALL", 1, 1 << 20,
                        PgConnection.Guard.timeout(config.connectTimeout()));
            }
        } catch (IOException | PgError e) {
            log.debug("closing a broker connection that could not be reset: {}", e.getMessage());
            connection.close();
        }
        pool.release(lease);
    }

    static boolean changesSession(QueryResult result) {
        return SESSION_CHANGING.contains(result.command().toUpperCase(Locale.ROOT));
    }

    static boolean changesSession(List<QueryResult> results) {
        return results.stream().anyMatch(SqlBroker::changesSession);
    }

    Timer.Sample startTimer() {
        return Timer.start(registry);
    }

    void stopTimer(Timer.Sample sample, String route, int status) {
        // found once per route and status (few of each), not built and looked up in the registry per request
        sample.stop(timers.computeIfAbsent(route + " " + status, key -> Timer.builder("palisade.broker.requests")
                .description("SQL broker requests by route and HTTP status")
                .tag("route", route)
                .tag("status", Integer.toString(status))
                .publishPercentileHistogram(false)
                .register(registry)));
    }
}
