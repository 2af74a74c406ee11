package io.palisade.agent;

import io.palisade.host.PostgresServer;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;

/**
 * Management connections to a local server over its private Unix socket (trust for the superuser on the socket only; the
 * socket directory is mode 700 and owned by the service user, so only palisade reaches it). Stateless.
 */
public final class AdminConnection {
    private AdminConnection() {}

    public static Connection open(Path socketFile, String database) {
        Properties properties = new Properties();
        properties.setProperty("user", PostgresServer.ADMIN_ROLE);
        properties.setProperty("socketFactory", "org.newsclub.net.unix.AFUNIXSocketFactory$FactoryArg");
        properties.setProperty("socketFactoryArg", socketFile.toString());
        properties.setProperty("sslmode", "disable");
        properties.setProperty("connectTimeout", "10");
        properties.setProperty("ApplicationName", "palisade-agent");
        try {
            return DriverManager.getConnection("jdbc:postgresql://localhost/" + database, properties);
        } catch (SQLException e) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "management connection over " + socketFile + " failed: " + e.getMessage(), e);
        }
    }

    /**
     * A management connection as {@code access} says: over its Unix socket, or over TCP with its password (a server
     * reached inside a network namespace palisade made; no TLS, the traffic never leaves the host).
     */
    public static Connection open(io.palisade.spi.AdminAccess access, String database) {
        return switch (access.transport()) {
            case io.palisade.spi.AdminAccess.UnixSocket unix -> open(unix.socketFile(), database);
            case io.palisade.spi.AdminAccess.Tcp tcp -> {
                Properties properties = new Properties();
                properties.setProperty("user", access.user());
                access.password().ifPresent(password -> properties.setProperty("password", password));
                properties.setProperty("sslmode", "disable");
                properties.setProperty("connectTimeout", "10");
                // a server behind a network namespace can vanish without a FIN: no statement here runs for minutes
                properties.setProperty("socketTimeout", "300");
                properties.setProperty("ApplicationName", "palisade-agent");
                try {
                    yield DriverManager.getConnection("jdbc:postgresql://" + tcp.endpoint() + "/" + database, properties);
                } catch (SQLException e) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "management connection to " + tcp.endpoint()
                            + " failed: " + e.getMessage(), e);
                }
            }
        };
    }

    /**
     * Takes back, on a management session in a database a tenant owns, every setting the tenant may have attached to
     * its database ({@code ALTER DATABASE … SET}) that would change who runs the session's statements or how: the role,
     * the search path (only {@code pg_catalog} and the session's own temporary schema, so no tenant function or
     * operator can shadow a built-in), read-only transactions, idle timeouts. The caller sets its own statement and lock
     * timeouts.
     */
    public static void reclaimSession(Connection connection) throws SQLException {
        try (java.sql.Statement s = connection.createStatement()) {
            s.execute("SET ROLE NONE");
            s.execute("SET search_path = pg_catalog, pg_temp");
            s.execute("SET default_transaction_read_only = off");
            s.execute("SET idle_in_transaction_session_timeout = 0");
            s.execute("SET idle_session_timeout = 0");
        }
    }
}
