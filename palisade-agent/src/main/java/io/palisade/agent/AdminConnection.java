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

    /** Quotes an identifier for SQL. */
    public static String ident(String name) {
        return "\"" + name.replace("\"", "\"\"") + "\"";
    }

    /** Quotes a string literal for SQL (values here are generated verifiers, never user text). */
    public static String literal(String value) {
        return "'" + value.replace("'", "''") + "'";
    }
}
