package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.agent.AdminConnection;
import io.palisade.pgwire.Sql;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.TenantPlace;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;

/**
 * The tenant's sessions on a move's source at the cutover, over a superuser connection to it: wait briefly for
 * in-flight work to finish, take LOGIN away from the tenant's role, end its sessions (each client gets 57P01,
 * "terminating connection due to administrator command", which drivers and pools treat as retryable) and wait until
 * they are gone, so that every commit the tenant was told about is in the WAL the target must confirm. Not thread-safe.
 */
final class TenantSessions {
    private static final String SESSIONS = "from pg_catalog.pg_stat_activity where usename = ? and datname = ?"
            + " and pid <> pg_catalog.pg_backend_pid()";

    private final Connection source;
    private final TenantPlace place;

    TenantSessions(Connection source, TenantPlace place) {
        this.source = requireNonNull(source, "source is null");
        this.place = requireNonNull(place, "place is null");
    }

    /**
     * Waits up to {@code timeout} until every statement or transaction of the tenant that was under way when this call
     * began has ended (its session is idle, gone, or in a later transaction). A client that is never idle (a pool
     * under load) is not waited for beyond its current transaction.
     */
    void drain(Duration timeout) throws SQLException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        java.util.Map<Long, String> busy = busy();
        while (!busy.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(10);
            java.util.Map<Long, String> now = busy();
            busy.entrySet().removeIf(e -> !e.getValue().equals(now.get(e.getKey())));
        }
    }

    /** The tenant's sessions in a statement or transaction now, by pid, with when that transaction began. */
    private java.util.Map<Long, String> busy() throws SQLException {
        java.util.Map<Long, String> busy = new java.util.HashMap<>();
        try (PreparedStatement s = source.prepareStatement("select pid, coalesce(xact_start, query_start)::text "
                + SESSIONS + " and state <> 'idle'")) {
            s.setString(1, place.role());
            s.setString(2, place.database());
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    busy.put(rs.getLong(1), String.valueOf(rs.getString(2)));
                }
            }
        }
        return busy;
    }

    /**
     * Waits up to {@code timeout} until every writing transaction (one with a transaction id: DDL always has one) of
     * the tenant that began before the source's clock read {@code since} has ended (a schema change begun before the
     * move's hold on schema changes would otherwise land during the copy); TIMEOUT naming how many are left.
     */
    void awaitTransactionsBegunBefore(String since, Duration timeout) throws SQLException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            long left;
            try (PreparedStatement s = source.prepareStatement("select count(*) " + SESSIONS
                    + " and xact_start < ?::timestamptz and backend_xid is not null")) {
                s.setString(1, place.role());
                s.setString(2, place.database());
                s.setString(3, since);
                try (ResultSet rs = s.executeQuery()) {
                    rs.next();
                    left = rs.getLong(1);
                }
            }
            if (left == 0) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new PalisadeException(ErrorCode.TIMEOUT, left + " transaction(s) of the tenant open since before"
                        + " the move began did not end within " + timeout + "; the move was undone: end them (or"
                        + " their idle sessions), then move again");
            }
            Thread.sleep(50);
        }
    }

    /** The source server's clock now, as text, for {@link #awaitTransactionsBegunBefore}. */
    String now() throws SQLException {
        try (Statement s = source.createStatement();
                ResultSet rs = s.executeQuery("select pg_catalog.clock_timestamp()::text")) {
            rs.next();
            return rs.getString(1);
        }
    }

    void revokeLogin() throws SQLException {
        try (Statement s = source.createStatement()) {
            s.execute("alter role " + Sql.quoteIdent(place.role()) + " nologin");
        }
    }

    void restoreLogin() throws SQLException {
        try (Statement s = source.createStatement()) {
            s.execute("alter role " + Sql.quoteIdent(place.role()) + " login");
        }
    }

    /** Ends every session of the tenant on the source and waits until they are gone. */
    void terminate(Duration timeout) throws SQLException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            try (PreparedStatement s = source.prepareStatement("select count(pg_terminate_backend(pid)) " + SESSIONS)) {
                s.setString(1, place.role());
                s.setString(2, place.database());
                try (ResultSet rs = s.executeQuery()) {
                    rs.next();
                    if (rs.getLong(1) == 0) {
                        return;
                    }
                }
            }
            if (System.nanoTime() > deadline) {
                throw new PalisadeException(ErrorCode.TIMEOUT, "the tenant's sessions on the source did not end within "
                        + timeout + "; the move was undone, retry it");
            }
            Thread.sleep(20);
        }
    }
}
