package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.agent.AdminConnection;
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
    private static final String SESSIONS = "from pg_stat_activity where usename = ? and datname = ?"
            + " and pid <> pg_backend_pid()";

    private final Connection source;
    private final TenantPlace place;

    TenantSessions(Connection source, TenantPlace place) {
        this.source = requireNonNull(source, "source is null");
        this.place = requireNonNull(place, "place is null");
    }

    /** Waits up to {@code timeout} until none of the tenant's sessions is in a statement or a transaction. */
    void drain(Duration timeout) throws SQLException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (count("select count(*) " + SESSIONS + " and state not in ('idle')") > 0
                && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
    }

    void revokeLogin() throws SQLException {
        try (Statement s = source.createStatement()) {
            s.execute("alter role " + AdminConnection.ident(place.role()) + " nologin");
        }
    }

    void restoreLogin() throws SQLException {
        try (Statement s = source.createStatement()) {
            s.execute("alter role " + AdminConnection.ident(place.role()) + " login");
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

    private long count(String sql) throws SQLException {
        try (PreparedStatement s = source.prepareStatement(sql)) {
            s.setString(1, place.role());
            s.setString(2, place.database());
            try (ResultSet rs = s.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }
}
