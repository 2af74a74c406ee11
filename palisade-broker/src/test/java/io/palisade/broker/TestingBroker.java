package io.palisade.broker;

import io.javalin.Javalin;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.palisade.spi.Backend;
import io.palisade.spi.BackendResolver;
import io.palisade.spi.BrokerTokenVerifier;
import io.palisade.spi.Endpoint;
import io.palisade.spi.TenantAuthenticator;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingPostgres;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A {@link SqlBroker} on a Javalin app on a random loopback port, in front of a real PostgreSQL, with hand-written
 * fakes for the resolver (one known database id; it counts its calls, as a resolve would wake a suspended instance),
 * the tenant authenticator (that id's login) and the token verifier (one token). Close is idempotent.
 */
final class TestingBroker implements AutoCloseable {
    static final String DATABASE_ID = "db-test1234";

    final TestingPostgres postgres;
    final String token = "tok-" + UUID.randomUUID();
    final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    final SqlBroker broker;
    final Javalin app;
    /** Calls of the resolver (each would wake a suspended database). */
    final AtomicInteger resolves = new AtomicInteger();

    TestingBroker(TestingPostgres postgres, BrokerConfig config) {
        this(postgres, config, postgres.credentials());
    }

    /** With {@code credentials} as the known database's tenant login (what the host checks before anything else). */
    TestingBroker(TestingPostgres postgres, BrokerConfig config, TenantCredentials credentials) {
        this.postgres = postgres;
        Map<String, Endpoint> known = Map.of(DATABASE_ID, postgres.endpoint());
        BackendResolver resolver = id -> {
            resolves.incrementAndGet();
            return CompletableFuture.completedFuture(Optional.ofNullable(known.get(id)).map(Backend::direct));
        };
        TenantAuthenticator authenticator = id -> CompletableFuture.completedFuture(
                DATABASE_ID.equals(id) ? Optional.of(credentials) : Optional.empty());
        BrokerTokenVerifier verifier = (id, candidate) ->
                DATABASE_ID.equals(id) && token.equals(candidate) ? Optional.of(credentials) : Optional.empty();
        this.broker = new SqlBroker(config, resolver, authenticator, verifier, registry);
        this.app = Javalin.create(javalin -> javalin.showJavalinBanner = false);
        broker.register(app);
        app.start("127.0.0.1", 0);
    }

    int port() {
        return app.port();
    }

    String baseUrl() {
        return "http://127.0.0.1:" + port();
    }

    /** The Neon connection string for the known database (host's first label = database id). */
    String connectionString() {
        return connectionString(DATABASE_ID, postgres.credentials().password());
    }

    String connectionString(String databaseId, String password) {
        TenantCredentials c = postgres.credentials();
        return "postgresql://" + c.username() + ":" + password + "@" + databaseId + ".db.localhost/" + c.database();
    }

    @Override
    public void close() {
        app.stop();
        broker.close();
    }
}
