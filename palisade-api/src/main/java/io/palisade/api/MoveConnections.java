package io.palisade.api;

import io.palisade.agent.AdminConnection;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.TenantPlace;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

/**
 * The two kinds of connection a move uses, kept apart because the tenant's objects are hostile input:
 * <ul>
 *   <li>{@link #superuser}: palisade's management role, for what only it may do (replication login, publication,
 *       subscription, sequences, sessions). Whatever the tenant attached to its database ({@code ALTER DATABASE … SET
 *       role}, read-only transactions) is taken back ({@link AdminConnection#reclaimSession}); its
 *       {@code search_path} is {@code pg_catalog, pg_temp}, so no unqualified
 *       name in palisade's queries can resolve to a tenant's function or operator (the tenant owns {@code public}
 *       on the rungs with a database of their own); statements time out after 2 minutes, lock waits after 10 s, so a
 *       tenant's open transaction cannot hang a move.</li>
 *   <li>{@link #tenant}: the tenant's own login with its own password, for reading its schema and replaying it: any
 *       tenant code that runs then (a function shadowing a built-in, a crafted setting) runs with the tenant's
 *       rights only.</li>
 * </ul>
 * Stateless.
 */
final class MoveConnections {
    private MoveConnections() {}

    static Connection superuser(TenantPlace place) {
        Connection connection = AdminConnection.open(place.admin(), place.database());
        try (Statement s = connection.createStatement()) {
            AdminConnection.reclaimSession(connection);
            s.execute("set statement_timeout = '120s'");
            s.execute("set lock_timeout = '10s'");
            return connection;
        } catch (SQLException e) {
            close(connection);
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot prepare the management connection to "
                    + place.database() + ": " + e.getMessage(), e);
        }
    }

    static Connection tenant(TenantPlace place, String password) {
        Properties properties = new Properties();
        properties.setProperty("user", place.role());
        properties.setProperty("password", password);
        properties.setProperty("sslmode", "disable"); // loopback or the VM's own namespace: never leaves the host
        properties.setProperty("connectTimeout", "10");
        properties.setProperty("socketTimeout", "600");
        properties.setProperty("ApplicationName", "palisade-move");
        try {
            return DriverManager.getConnection("jdbc:postgresql://" + place.server() + "/" + place.database(),
                    properties);
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot log in as the tenant at " + place.server()
                    + ": " + e.getMessage(), e);
        }
    }

    static void close(Connection connection) {
        if (connection != null) {
            try {
                connection.close();
            } catch (SQLException ignored) {
                // closing: nothing left to do
            }
        }
    }
}
