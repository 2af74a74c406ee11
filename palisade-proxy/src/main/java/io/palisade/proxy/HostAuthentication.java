package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.palisade.pgwire.ScramSecret;
import io.palisade.pgwire.ScramServer;
import io.palisade.spi.TenantCredentials;
import java.security.MessageDigest;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checks one client's login on the host, before anything is spent on the tenant: looks up the tenant's credentials
 * (never wakes anything), then either runs the server side of SCRAM-SHA-256 against the secret derived from the
 * tenant password, or compares a cleartext password in constant time. Unknown ids, other users and wrong passwords
 * take the same path with a decoy secret, so their bytes are identical and their work comparable. One login per
 * instance; confined to the client's event loop, except that the futures it returns may complete elsewhere.
 */
final class HostAuthentication {
    private static final Logger log = LoggerFactory.getLogger(HostAuthentication.class);

    /** An accepted login: the tenant's credentials, and the SCRAM server-final message (null for cleartext). */
    record Verified(TenantCredentials credentials, String serverFinal) {
        Verified {
            requireNonNull(credentials, "credentials is null");
        }
    }

    private final PostgresProxy proxy;
    private final String databaseId;
    private final String user;
    private final String database;
    private final byte[] salt;
    private final CompletableFuture<Optional<TenantCredentials>> credentials;
    private final ScramServer scram;
    private volatile long notBeforeNanos;

    /**
     * Starts the credential lookup at once (it overlaps the SASL round trips) and, for the tenant's own login, the
     * derivation of its secret.
     */
    HostAuthentication(PostgresProxy proxy, String databaseId, String user, String database) {
        this.proxy = proxy;
        this.databaseId = databaseId;
        this.user = user;
        this.database = database;
        this.salt = proxy.mockSalt(databaseId, user);
        this.scram = new ScramServer(salt, SecretCache.ITERATIONS);
        this.credentials = lookup(proxy, databaseId).whenComplete((found, error) ->
                notBeforeNanos = System.nanoTime() + proxy.secrets().proofFloorNanos());
        credentials.thenAccept(found -> found.filter(this::isTenantLogin)
                .ifPresent(c -> proxy.secrets().secret(databaseId, c.password(), salt)));
    }

    private static CompletableFuture<Optional<TenantCredentials>> lookup(PostgresProxy proxy, String databaseId) {
        if (!Routing.isValidDatabaseId(databaseId)) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        try {
            CompletableFuture<Optional<TenantCredentials>> future = proxy.authenticator().credentials(databaseId);
            return future == null ? CompletableFuture.completedFuture(Optional.empty()) : future;
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private boolean isTenantLogin(TenantCredentials found) {
        return found.username().equals(user) && found.database().equals(database);
    }

    /**
     * The {@link System#nanoTime()} before which the verdict must not be sent (the lookup's completion plus
     * {@link SecretCache#proofFloorNanos()}), so a cold cache, a warm one and an unknown id answer after the same
     * floor. Valid once a verdict future has completed.
     */
    long notBeforeNanos() {
        return notBeforeNanos;
    }

    /** The server-first message for the client-first one, or empty if it is malformed. */
    Optional<String> serverFirst(String clientFirst) {
        return scram.serverFirst(clientFirst);
    }

    /**
     * Verifies the client-final message. Completes with the verified login, with empty for an unknown id, another
     * user or database, a wrong proof or a malformed message, or exceptionally when the credentials cannot be read.
     */
    CompletableFuture<Optional<Verified>> verifyScram(String clientFinal) {
        return credentials.thenCompose(found -> {
            Optional<TenantCredentials> tenant = found.filter(this::isTenantLogin);
            CompletableFuture<ScramSecret> secret = tenant.isPresent()
                    ? proxy.secrets().secret(databaseId, tenant.get().password(), salt)
                    : CompletableFuture.completedFuture(proxy.decoySecret());
            return secret.thenApply(s -> {
                boolean proven = scram.verify(clientFinal, s);
                return proven && tenant.isPresent()
                        ? Optional.of(new Verified(tenant.get(), scram.serverFinal(s)))
                        : Optional.<Verified>empty();
            });
        }).whenComplete((result, error) -> {
            if (error != null) {
                log.warn("cannot check a login to database {}: {}", databaseId, error.toString());
            }
        });
    }

    /** Verifies a cleartext password (the {@code endpoint=<id>;<password>} route) in constant time. */
    CompletableFuture<Optional<Verified>> verifyPassword(String password) {
        return credentials.thenApply(found -> {
            Optional<TenantCredentials> tenant = found.filter(this::isTenantLogin);
            byte[] expected = SecretCache.digest(salt, tenant.map(TenantCredentials::password)
                    .orElse(proxy.decoyPassword()));
            boolean equal = MessageDigest.isEqual(SecretCache.digest(salt, password), expected);
            return equal && tenant.isPresent() ? Optional.of(new Verified(tenant.get(), null))
                    : Optional.<Verified>empty();
        });
    }
}
