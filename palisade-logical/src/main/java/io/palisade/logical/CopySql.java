package io.palisade.logical;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;

/** Statement helpers for {@link LogicalCopy}'s two sides. Stateless. */
final class CopySql {
    private CopySql() {}

    static void exec(Connection connection, String sql) throws SQLException {
        try (Statement statement = connection.createStatement()) {
            statement.execute(sql);
        }
    }

    /** Runs {@code work} in one transaction on an autocommit connection, rolled back when it throws. */
    static void inTransaction(Connection connection, Work work) throws SQLException {
        if (!connection.getAutoCommit()) {
            throw new IllegalArgumentException("the connection must not be inside a transaction (autocommit on)");
        }
        connection.setAutoCommit(false);
        try {
            work.run();
            connection.commit();
        } catch (RuntimeException | SQLException e) {
            connection.rollback();
            throw e;
        } finally {
            connection.setAutoCommit(true);
        }
    }

    @FunctionalInterface
    interface Work {
        void run() throws SQLException;
    }
}
