package io.palisade.logical;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * Runs catalog reads in one read-only, repeatable-read transaction with a {@code search_path} of its own, then rolls
 * back and leaves the connection as it found it. Catalog functions such as {@code pg_get_viewdef} read the newest
 * catalog rather than the snapshot, as with pg_dump: concurrent DDL during an extraction can still be seen half-way.
 * Stateless.
 */
final class ReadOnlySnapshot {
    private ReadOnlySnapshot() {}

    interface Work<T> {
        T run(Catalog catalog) throws SQLException;
    }

    /** {@code searchPath}: a list as {@code SET search_path} takes it (identifiers already quoted), or empty. */
    static <T> T read(Connection connection, String searchPath, String what, Work<T> work) {
        try {
            if (!connection.getAutoCommit()) {
                throw new IllegalArgumentException("the connection must not be inside a transaction (autocommit on)");
            }
            connection.setAutoCommit(false);
            try {
                try (Statement statement = connection.createStatement()) {
                    statement.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
                }
                try (PreparedStatement statement = connection.prepareStatement(
                        "select set_config('search_path', ?, true)")) {
                    statement.setString(1, searchPath);
                    statement.execute();
                }
                return work.run(new Catalog(connection));
            } finally {
                connection.rollback();
                connection.setAutoCommit(true);
            }
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot read the catalog to " + what + ": "
                    + e.getMessage() + " (SQLSTATE " + e.getSQLState() + "); check that the server is up and the"
                    + " connection is a superuser's, then retry", e);
        }
    }
}
