package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Configuration of the public PostgreSQL port ({@code proxy.*}). Immutable.
 *
 * @param bindHost address to listen on ({@code proxy.bind-host}, default {@code 127.0.0.1})
 * @param port TCP port ({@code proxy.port}, default 5432; 0 picks a free port, see {@link PostgresProxy#port()})
 * @param domain database hosts are {@code <id>.<domain>} ({@code proxy.domain}, e.g. {@code db.localhost})
 * @param certificateFile operator-supplied PEM certificate chain ({@code proxy.tls.certificate-file}); when absent, a
 *     local CA and a wildcard certificate are generated under {@code tlsDirectory}
 * @param privateKeyFile operator-supplied PEM private key ({@code proxy.tls.private-key-file}, secret); set together
 *     with {@code certificateFile}
 * @param tlsDirectory where generated TLS material lives ({@code proxy.tls.directory})
 * @param maxConnectionsPerDatabase open client connections allowed per database
 *     ({@code proxy.max-connections-per-database}, default 100)
 * @param maxClientConnections authenticated client sessions allowed in total ({@code proxy.max-client-connections},
 *     default 10000); sessions still authenticating are capped by the two limits below instead
 * @param maxUnauthenticated client connections allowed in total that have not authenticated yet (TLS handshakes,
 *     startup, SASL; {@code proxy.max-unauthenticated-connections}, default 1000)
 * @param maxUnauthenticatedPerSource of those, from one source address ({@code proxy.max-unauthenticated-per-source},
 *     default 64)
 * @param authenticationTimeout time from accept until the client has proven the tenant password to the proxy; after
 *     it the socket closes ({@code proxy.authentication-timeout}, 10s)
 * @param handshakeTimeout time from accept until the TLS handshake is done ({@code proxy.tls.handshake-timeout}, 10s)
 * @param startupTimeout time from accept until the session is ready for queries, authentication and waking a suspended
 *     database included ({@code proxy.startup-timeout}, 60s)
 * @param idleTimeout close relayed connections with no traffic either way for this long; zero disables
 *     ({@code proxy.idle-timeout}, 1h)
 * @param backendConnectTimeout TCP connect timeout to the database instance ({@code proxy.backend-connect-timeout},
 *     10s)
 * @param maxStartupPacketSize the largest StartupMessage accepted ({@code proxy.max-startup-packet-size}, 10000 bytes)
 * @param ioThreads event-loop threads; 0 means one per two cores, at least one ({@code proxy.io-threads})
 * @param backendIdleTimeout how long a backend connection whose client left cleanly waits, reset, for the next client
 *     of the same login ({@code proxy.backend-idle-timeout}, 30s); zero disables the reuse
 * @param maxIdleBackendsPerDatabase how many such connections one database keeps at most
 *     ({@code proxy.max-idle-backends-per-database}, 64); zero disables the reuse
 */
public record ProxyConfig(
        String bindHost,
        int port,
        String domain,
        Optional<Path> certificateFile,
        Optional<Path> privateKeyFile,
        Path tlsDirectory,
        int maxConnectionsPerDatabase,
        int maxClientConnections,
        int maxUnauthenticated,
        int maxUnauthenticatedPerSource,
        Duration authenticationTimeout,
        Duration handshakeTimeout,
        Duration startupTimeout,
        Duration idleTimeout,
        Duration backendConnectTimeout,
        int maxStartupPacketSize,
        int ioThreads,
        Duration backendIdleTimeout,
        int maxIdleBackendsPerDatabase) {
    private static final Pattern DOMAIN =
            Pattern.compile("[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*");

    public ProxyConfig {
        requireNonNull(bindHost, "bindHost is null");
        requireNonNull(domain, "domain is null");
        requireNonNull(certificateFile, "certificateFile is null");
        requireNonNull(privateKeyFile, "privateKeyFile is null");
        requireNonNull(tlsDirectory, "tlsDirectory is null");
        requireNonNull(authenticationTimeout, "authenticationTimeout is null");
        requireNonNull(handshakeTimeout, "handshakeTimeout is null");
        requireNonNull(startupTimeout, "startupTimeout is null");
        requireNonNull(idleTimeout, "idleTimeout is null");
        requireNonNull(backendConnectTimeout, "backendConnectTimeout is null");
        requireNonNull(backendIdleTimeout, "backendIdleTimeout is null");
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("proxy.port must be 0..65535, got " + port);
        }
        if (!DOMAIN.matcher(domain).matches()) {
            throw new IllegalArgumentException(
                    "proxy.domain must be a lowercase DNS name such as db.localhost, got '" + domain + "'");
        }
        if (certificateFile.isPresent() != privateKeyFile.isPresent()) {
            throw new IllegalArgumentException(
                    "proxy.tls.certificate-file and proxy.tls.private-key-file must be set together (or neither, to"
                            + " use a generated local CA)");
        }
        if (maxConnectionsPerDatabase < 1) {
            throw new IllegalArgumentException(
                    "proxy.max-connections-per-database must be at least 1, got " + maxConnectionsPerDatabase);
        }
        if (maxClientConnections < 1) {
            throw new IllegalArgumentException(
                    "proxy.max-client-connections must be at least 1, got " + maxClientConnections);
        }
        if (maxUnauthenticated < 1 || maxUnauthenticatedPerSource < 1) {
            throw new IllegalArgumentException("proxy.max-unauthenticated-connections and"
                    + " proxy.max-unauthenticated-per-source must be at least 1, got " + maxUnauthenticated + " and "
                    + maxUnauthenticatedPerSource);
        }
        positive(authenticationTimeout, "proxy.authentication-timeout");
        positive(handshakeTimeout, "proxy.tls.handshake-timeout");
        positive(startupTimeout, "proxy.startup-timeout");
        positive(backendConnectTimeout, "proxy.backend-connect-timeout");
        if (idleTimeout.isNegative()) {
            throw new IllegalArgumentException("proxy.idle-timeout must not be negative, got " + idleTimeout);
        }
        if (maxStartupPacketSize < 64 || maxStartupPacketSize > 1 << 20) {
            throw new IllegalArgumentException(
                    "proxy.max-startup-packet-size must be 64..1048576, got " + maxStartupPacketSize);
        }
        if (ioThreads < 0) {
            throw new IllegalArgumentException("proxy.io-threads must not be negative, got " + ioThreads);
        }
        if (backendIdleTimeout.isNegative()) {
            throw new IllegalArgumentException(
                    "proxy.backend-idle-timeout must not be negative, got " + backendIdleTimeout);
        }
        if (maxIdleBackendsPerDatabase < 0) {
            throw new IllegalArgumentException("proxy.max-idle-backends-per-database must not be negative, got "
                    + maxIdleBackendsPerDatabase);
        }
    }

    private static void positive(Duration value, String name) {
        if (value.isZero() || value.isNegative()) {
            throw new IllegalArgumentException(name + " must be positive, got " + value);
        }
    }

    /** Defaults for the given domain, generating TLS material under {@code tlsDirectory}. */
    public static ProxyConfig defaults(String domain, Path tlsDirectory) {
        return new ProxyConfig(
                "127.0.0.1",
                5432,
                domain,
                Optional.empty(),
                Optional.empty(),
                tlsDirectory,
                100,
                10_000,
                1000,
                64,
                Duration.ofSeconds(10),
                Duration.ofSeconds(10),
                Duration.ofSeconds(60),
                Duration.ofHours(1),
                Duration.ofSeconds(10),
                10_000,
                0,
                Duration.ofSeconds(30),
                64);
    }

    public ProxyConfig withBind(String newBindHost, int newPort) {
        return new ProxyConfig(newBindHost, newPort, domain, certificateFile, privateKeyFile, tlsDirectory,
                maxConnectionsPerDatabase, maxClientConnections, maxUnauthenticated, maxUnauthenticatedPerSource,
                authenticationTimeout, handshakeTimeout, startupTimeout, idleTimeout,
                backendConnectTimeout, maxStartupPacketSize, ioThreads, backendIdleTimeout,
                maxIdleBackendsPerDatabase);
    }

    public ProxyConfig withCertificate(Path certificate, Path privateKey) {
        return new ProxyConfig(bindHost, port, domain, Optional.of(certificate), Optional.of(privateKey),
                tlsDirectory, maxConnectionsPerDatabase, maxClientConnections, maxUnauthenticated,
                maxUnauthenticatedPerSource,
                authenticationTimeout, handshakeTimeout, startupTimeout,
                idleTimeout, backendConnectTimeout, maxStartupPacketSize, ioThreads, backendIdleTimeout,
                maxIdleBackendsPerDatabase);
    }

    public ProxyConfig withLimits(int newMaxConnectionsPerDatabase, int newMaxClientConnections) {
        return new ProxyConfig(bindHost, port, domain, certificateFile, privateKeyFile, tlsDirectory,
                newMaxConnectionsPerDatabase, newMaxClientConnections, maxUnauthenticated, maxUnauthenticatedPerSource,
                authenticationTimeout, handshakeTimeout, startupTimeout, idleTimeout,
                backendConnectTimeout, maxStartupPacketSize, ioThreads, backendIdleTimeout,
                maxIdleBackendsPerDatabase);
    }

    public ProxyConfig withTimeouts(Duration newHandshake, Duration newStartup, Duration newIdle) {
        return new ProxyConfig(bindHost, port, domain, certificateFile, privateKeyFile, tlsDirectory,
                maxConnectionsPerDatabase, maxClientConnections, maxUnauthenticated, maxUnauthenticatedPerSource,
                authenticationTimeout, newHandshake, newStartup, newIdle,
                backendConnectTimeout, maxStartupPacketSize, ioThreads, backendIdleTimeout,
                maxIdleBackendsPerDatabase);
    }

    public ProxyConfig withBackendConnectTimeout(Duration newBackendConnectTimeout) {
        return new ProxyConfig(bindHost, port, domain, certificateFile, privateKeyFile, tlsDirectory,
                maxConnectionsPerDatabase, maxClientConnections, maxUnauthenticated, maxUnauthenticatedPerSource,
                authenticationTimeout, handshakeTimeout, startupTimeout, idleTimeout,
                newBackendConnectTimeout, maxStartupPacketSize, ioThreads, backendIdleTimeout,
                maxIdleBackendsPerDatabase);
    }

    public ProxyConfig withMaxStartupPacketSize(int newMaxStartupPacketSize) {
        return new ProxyConfig(bindHost, port, domain, certificateFile, privateKeyFile, tlsDirectory,
                maxConnectionsPerDatabase, maxClientConnections, maxUnauthenticated, maxUnauthenticatedPerSource,
                authenticationTimeout, handshakeTimeout, startupTimeout, idleTimeout,
                backendConnectTimeout, newMaxStartupPacketSize, ioThreads, backendIdleTimeout,
                maxIdleBackendsPerDatabase);
    }

    public ProxyConfig withIoThreads(int newIoThreads) {
        return new ProxyConfig(bindHost, port, domain, certificateFile, privateKeyFile, tlsDirectory,
                maxConnectionsPerDatabase, maxClientConnections, maxUnauthenticated, maxUnauthenticatedPerSource,
                authenticationTimeout, handshakeTimeout, startupTimeout, idleTimeout,
                backendConnectTimeout, maxStartupPacketSize, newIoThreads, backendIdleTimeout,
                maxIdleBackendsPerDatabase);
    }

    /** The pre-authentication limits: caps on sessions not yet authenticated and the authentication deadline. */
    public ProxyConfig withPreAuthentication(int newMaxUnauthenticated, int newMaxUnauthenticatedPerSource,
            Duration newAuthenticationTimeout) {
        return new ProxyConfig(bindHost, port, domain, certificateFile, privateKeyFile, tlsDirectory,
                maxConnectionsPerDatabase, maxClientConnections, newMaxUnauthenticated, newMaxUnauthenticatedPerSource,
                newAuthenticationTimeout, handshakeTimeout, startupTimeout, idleTimeout, backendConnectTimeout,
                maxStartupPacketSize, ioThreads, backendIdleTimeout,
                maxIdleBackendsPerDatabase);
    }

    /**
     * Reuse of logged-in backend connections: how long one waits for the next client and how many a database keeps;
     * either zero disables it.
     */
    public ProxyConfig withBackendPool(Duration newBackendIdleTimeout, int newMaxIdleBackendsPerDatabase) {
        return new ProxyConfig(bindHost, port, domain, certificateFile, privateKeyFile, tlsDirectory,
                maxConnectionsPerDatabase, maxClientConnections, maxUnauthenticated, maxUnauthenticatedPerSource,
                authenticationTimeout, handshakeTimeout, startupTimeout, idleTimeout, backendConnectTimeout,
                maxStartupPacketSize, ioThreads, newBackendIdleTimeout, newMaxIdleBackendsPerDatabase);
    }
}
