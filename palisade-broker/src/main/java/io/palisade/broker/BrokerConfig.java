package io.palisade.broker;

import static java.util.Objects.requireNonNull;

import java.time.Duration;

/**
 * Limits and pool settings of the SQL-over-HTTP broker. Defaults follow Neon's: 10 MiB request and response bodies, 20
 * backend connections per database.
 *
 * @param maxRows rows kept per statement: PandaStack routes truncate (and say so), {@code /sql} fails with 507
 * @param maxRequestBytes largest accepted request body, and largest WebSocket message once logged in (bigger: 413)
 * @param maxResponseBytes largest response body (bigger: 507); also the largest single message read from a backend
 * @param statementTimeout server-side {@code statement_timeout} of broker connections; the broker also cancels a
 *     statement itself shortly after it
 * @param poolSizePerDatabase bound on backend connections per database, over all users
 * @param idleConnectionTimeout an idle pooled connection is closed after this long
 * @param connectTimeout bound on resolving, connecting and logging in to a backend
 * @param poolWaitTimeout how long a request waits for a pooled connection when the pool is full
 * @param maxConcurrentRequests HTTP requests handled at once over all databases, counted from arrival (more: 429)
 * @param maxConcurrentRequestsPerDatabase HTTP requests handled at once for one database, counted only once the
 *     caller is authenticated, so strangers cannot use up a tenant's share (more: 429)
 * @param maxWebSocketSessions open {@code /v2} sessions over all databases, logged in or not (more: refused)
 * @param maxWebSocketSessionsPerDatabase logged-in {@code /v2} sessions of one database (more: 53300)
 * @param loginTimeout a {@code /v2} session that has not logged in by then is closed; also its idle timeout until then
 * @param maxLoginMessageBytes largest WebSocket message, and most bytes buffered, before a {@code /v2} login
 * @param maxLoginsPerAddress {@code /v2} sessions from one client address that have not logged in yet (more: refused)
 */
public record BrokerConfig(
        int maxRows,
        long maxRequestBytes,
        long maxResponseBytes,
        Duration statementTimeout,
        int poolSizePerDatabase,
        Duration idleConnectionTimeout,
        Duration connectTimeout,
        Duration poolWaitTimeout,
        int maxConcurrentRequests,
        int maxConcurrentRequestsPerDatabase,
        int maxWebSocketSessions,
        int maxWebSocketSessionsPerDatabase,
        Duration loginTimeout,
        int maxLoginMessageBytes,
        int maxLoginsPerAddress) {
    public static final int DEFAULT_MAX_ROWS = 10_000;
    public static final long DEFAULT_MAX_REQUEST_BYTES = 10L * 1024 * 1024;
    public static final long DEFAULT_MAX_RESPONSE_BYTES = 10L * 1024 * 1024;
    public static final Duration DEFAULT_STATEMENT_TIMEOUT = Duration.ofSeconds(30);
    public static final int DEFAULT_POOL_SIZE_PER_DATABASE = 20;
    public static final Duration DEFAULT_IDLE_CONNECTION_TIMEOUT = Duration.ofMinutes(5);
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(30);
    public static final Duration DEFAULT_POOL_WAIT_TIMEOUT = Duration.ofSeconds(10);
    public static final int DEFAULT_MAX_CONCURRENT_REQUESTS = 256;
    public static final int DEFAULT_MAX_CONCURRENT_REQUESTS_PER_DATABASE = 64;
    public static final int DEFAULT_MAX_WEBSOCKET_SESSIONS = 2_000;
    public static final int DEFAULT_MAX_WEBSOCKET_SESSIONS_PER_DATABASE = 100;
    public static final Duration DEFAULT_LOGIN_TIMEOUT = Duration.ofSeconds(10);
    public static final int DEFAULT_MAX_LOGIN_MESSAGE_BYTES = 64 * 1024;
    public static final int DEFAULT_MAX_LOGINS_PER_ADDRESS = 32;

    public BrokerConfig {
        requireNonNull(statementTimeout, "statementTimeout is null");
        requireNonNull(idleConnectionTimeout, "idleConnectionTimeout is null");
        requireNonNull(connectTimeout, "connectTimeout is null");
        requireNonNull(poolWaitTimeout, "poolWaitTimeout is null");
        requireNonNull(loginTimeout, "loginTimeout is null");
        if (maxRows < 1) {
            throw new IllegalArgumentException("broker.max-rows must be at least 1, got " + maxRows);
        }
        if (maxRequestBytes < 1024) {
            throw new IllegalArgumentException(
                    "broker.max-request-bytes must be at least 1024, got " + maxRequestBytes);
        }
        if (maxResponseBytes < 1024 || maxResponseBytes > Integer.MAX_VALUE - 1024) {
            throw new IllegalArgumentException(
                    "broker.max-response-bytes must be between 1024 and 2 GiB, got " + maxResponseBytes);
        }
        if (statementTimeout.toMillis() < 1 || statementTimeout.toMillis() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("broker.statement-timeout out of range: " + statementTimeout);
        }
        if (poolSizePerDatabase < 1) {
            throw new IllegalArgumentException(
                    "broker.pool-size-per-database must be at least 1, got " + poolSizePerDatabase);
        }
        if (idleConnectionTimeout.isNegative() || idleConnectionTimeout.isZero()) {
            throw new IllegalArgumentException("broker.idle-connection-timeout must be positive");
        }
        if (connectTimeout.isNegative() || connectTimeout.isZero()) {
            throw new IllegalArgumentException("broker.connect-timeout must be positive");
        }
        if (poolWaitTimeout.isNegative()) {
            throw new IllegalArgumentException("broker.pool-wait-timeout must not be negative");
        }
        if (maxConcurrentRequests < 1 || maxConcurrentRequestsPerDatabase < 1) {
            throw new IllegalArgumentException("broker.max-concurrent-requests and "
                    + "broker.max-concurrent-requests-per-database must be at least 1, got " + maxConcurrentRequests
                    + " and " + maxConcurrentRequestsPerDatabase);
        }
        if (maxWebSocketSessions < 1 || maxWebSocketSessionsPerDatabase < 1) {
            throw new IllegalArgumentException("broker.max-websocket-sessions and "
                    + "broker.max-websocket-sessions-per-database must be at least 1, got " + maxWebSocketSessions
                    + " and " + maxWebSocketSessionsPerDatabase);
        }
        if (loginTimeout.toMillis() < 1) {
            throw new IllegalArgumentException("broker.login-timeout must be positive, got " + loginTimeout);
        }
        if (maxLoginMessageBytes < 1024) {
            throw new IllegalArgumentException(
                    "broker.max-login-message-bytes must be at least 1024, got " + maxLoginMessageBytes);
        }
        if (maxLoginsPerAddress < 1) {
            throw new IllegalArgumentException(
                    "broker.max-logins-per-address must be at least 1, got " + maxLoginsPerAddress);
        }
    }

    public static BrokerConfig defaults() {
        return new BrokerConfig(DEFAULT_MAX_ROWS, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_RESPONSE_BYTES,
                DEFAULT_STATEMENT_TIMEOUT, DEFAULT_POOL_SIZE_PER_DATABASE, DEFAULT_IDLE_CONNECTION_TIMEOUT,
                DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_WAIT_TIMEOUT, DEFAULT_MAX_CONCURRENT_REQUESTS,
                DEFAULT_MAX_CONCURRENT_REQUESTS_PER_DATABASE, DEFAULT_MAX_WEBSOCKET_SESSIONS,
                DEFAULT_MAX_WEBSOCKET_SESSIONS_PER_DATABASE, DEFAULT_LOGIN_TIMEOUT, DEFAULT_MAX_LOGIN_MESSAGE_BYTES,
                DEFAULT_MAX_LOGINS_PER_ADDRESS);
    }

    public BrokerConfig withMaxRows(int value) {
        return new BrokerConfig(value, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout, maxConcurrentRequests,
                maxConcurrentRequestsPerDatabase, maxWebSocketSessions, maxWebSocketSessionsPerDatabase, loginTimeout,
                maxLoginMessageBytes, maxLoginsPerAddress);
    }

    public BrokerConfig withMaxRequestBytes(long value) {
        return new BrokerConfig(maxRows, value, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout, maxConcurrentRequests,
                maxConcurrentRequestsPerDatabase, maxWebSocketSessions, maxWebSocketSessionsPerDatabase, loginTimeout,
                maxLoginMessageBytes, maxLoginsPerAddress);
    }

    public BrokerConfig withMaxResponseBytes(long value) {
        return new BrokerConfig(maxRows, maxRequestBytes, value, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout, maxConcurrentRequests,
                maxConcurrentRequestsPerDatabase, maxWebSocketSessions, maxWebSocketSessionsPerDatabase, loginTimeout,
                maxLoginMessageBytes, maxLoginsPerAddress);
    }

    public BrokerConfig withStatementTimeout(Duration value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, value, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout, maxConcurrentRequests,
                maxConcurrentRequestsPerDatabase, maxWebSocketSessions, maxWebSocketSessionsPerDatabase, loginTimeout,
                maxLoginMessageBytes, maxLoginsPerAddress);
    }

    public BrokerConfig withPoolSizePerDatabase(int value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, value,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout, maxConcurrentRequests,
                maxConcurrentRequestsPerDatabase, maxWebSocketSessions, maxWebSocketSessionsPerDatabase, loginTimeout,
                maxLoginMessageBytes, maxLoginsPerAddress);
    }

    public BrokerConfig withIdleConnectionTimeout(Duration value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                value, connectTimeout, poolWaitTimeout, maxConcurrentRequests, maxConcurrentRequestsPerDatabase,
                maxWebSocketSessions, maxWebSocketSessionsPerDatabase, loginTimeout, maxLoginMessageBytes,
                maxLoginsPerAddress);
    }

    public BrokerConfig withConnectTimeout(Duration value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, value, poolWaitTimeout, maxConcurrentRequests, maxConcurrentRequestsPerDatabase,
                maxWebSocketSessions, maxWebSocketSessionsPerDatabase, loginTimeout, maxLoginMessageBytes,
                maxLoginsPerAddress);
    }

    public BrokerConfig withPoolWaitTimeout(Duration value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, value, maxConcurrentRequests, maxConcurrentRequestsPerDatabase,
                maxWebSocketSessions, maxWebSocketSessionsPerDatabase, loginTimeout, maxLoginMessageBytes,
                maxLoginsPerAddress);
    }

    /** Caps on HTTP requests handled at once: over all databases, and per (authenticated) database. */
    public BrokerConfig withConcurrentRequests(int total, int perDatabase) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout, total, perDatabase, maxWebSocketSessions,
                maxWebSocketSessionsPerDatabase, loginTimeout, maxLoginMessageBytes, maxLoginsPerAddress);
    }

    /** Caps on {@code /v2} sessions: over all databases (logged in or not), and logged-in per database. */
    public BrokerConfig withWebSocketSessions(int total, int perDatabase) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout, maxConcurrentRequests,
                maxConcurrentRequestsPerDatabase, total, perDatabase, loginTimeout, maxLoginMessageBytes,
                maxLoginsPerAddress);
    }

    /** The {@code /v2} login deadline and the largest message accepted before the login. */
    public BrokerConfig withLogin(Duration timeout, int maxMessageBytes) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout, maxConcurrentRequests,
                maxConcurrentRequestsPerDatabase, maxWebSocketSessions, maxWebSocketSessionsPerDatabase, timeout,
                maxMessageBytes, maxLoginsPerAddress);
    }

    /** How many {@code /v2} sessions one client address may have waiting for their login. */
    public BrokerConfig withLoginsPerAddress(int value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout, maxConcurrentRequests,
                maxConcurrentRequestsPerDatabase, maxWebSocketSessions, maxWebSocketSessionsPerDatabase, loginTimeout,
                maxLoginMessageBytes, value);
    }
}
