package io.palisade.broker;

import static java.util.Objects.requireNonNull;

import java.time.Duration;

/**
 * Limits and pool settings of the SQL-over-HTTP broker. Defaults follow Neon's: 10 MiB request and response bodies, 20
 * backend connections per database.
 *
 * @param maxRows rows kept per statement: PandaStack routes truncate (and say so), {@code /sql} fails with 507
 * @param maxRequestBytes largest accepted request body (bigger: 413)
 * @param maxResponseBytes largest response body (bigger: 507)
 * @param statementTimeout server-side {@code statement_timeout} of broker connections; the broker also cancels a
 *     statement itself shortly after it
 * @param poolSizePerDatabase bound on backend connections per database, over all users
 * @param idleConnectionTimeout an idle pooled connection is closed after this long
 * @param connectTimeout bound on resolving, connecting and logging in to a backend
 * @param poolWaitTimeout how long a request waits for a pooled connection when the pool is full
 */
public record BrokerConfig(
        int maxRows,
        long maxRequestBytes,
        long maxResponseBytes,
        Duration statementTimeout,
        int poolSizePerDatabase,
        Duration idleConnectionTimeout,
        Duration connectTimeout,
        Duration poolWaitTimeout) {
    public static final int DEFAULT_MAX_ROWS = 10_000;
    public static final long DEFAULT_MAX_REQUEST_BYTES = 10L * 1024 * 1024;
    public static final long DEFAULT_MAX_RESPONSE_BYTES = 10L * 1024 * 1024;
    public static final Duration DEFAULT_STATEMENT_TIMEOUT = Duration.ofSeconds(30);
    public static final int DEFAULT_POOL_SIZE_PER_DATABASE = 20;
    public static final Duration DEFAULT_IDLE_CONNECTION_TIMEOUT = Duration.ofMinutes(5);
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(30);
    public static final Duration DEFAULT_POOL_WAIT_TIMEOUT = Duration.ofSeconds(10);

    public BrokerConfig {
        requireNonNull(statementTimeout, "statementTimeout is null");
        requireNonNull(idleConnectionTimeout, "idleConnectionTimeout is null");
        requireNonNull(connectTimeout, "connectTimeout is null");
        requireNonNull(poolWaitTimeout, "poolWaitTimeout is null");
        if (maxRows < 1) {
            throw new IllegalArgumentException("broker.max-rows must be at least 1, got " + maxRows);
        }
        if (maxRequestBytes < 1024) {
            throw new IllegalArgumentException(
                    "broker.max-request-bytes must be at least 1024, got " + maxRequestBytes);
        }
        if (maxResponseBytes < 1024) {
            throw new IllegalArgumentException(
                    "broker.max-response-bytes must be at least 1024, got " + maxResponseBytes);
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
    }

    public static BrokerConfig defaults() {
        return new BrokerConfig(DEFAULT_MAX_ROWS, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_RESPONSE_BYTES,
                DEFAULT_STATEMENT_TIMEOUT, DEFAULT_POOL_SIZE_PER_DATABASE, DEFAULT_IDLE_CONNECTION_TIMEOUT,
                DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_WAIT_TIMEOUT);
    }

    public BrokerConfig withMaxRows(int value) {
        return new BrokerConfig(value, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout);
    }

    public BrokerConfig withMaxRequestBytes(long value) {
        return new BrokerConfig(maxRows, value, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout);
    }

    public BrokerConfig withMaxResponseBytes(long value) {
        return new BrokerConfig(maxRows, maxRequestBytes, value, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout);
    }

    public BrokerConfig withStatementTimeout(Duration value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, value, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout);
    }

    public BrokerConfig withPoolSizePerDatabase(int value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, value,
                idleConnectionTimeout, connectTimeout, poolWaitTimeout);
    }

    public BrokerConfig withIdleConnectionTimeout(Duration value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                value, connectTimeout, poolWaitTimeout);
    }

    public BrokerConfig withPoolWaitTimeout(Duration value) {
        return new BrokerConfig(maxRows, maxRequestBytes, maxResponseBytes, statementTimeout, poolSizePerDatabase,
                idleConnectionTimeout, connectTimeout, value);
    }
}
