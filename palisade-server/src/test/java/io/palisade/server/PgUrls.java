package io.palisade.server;

import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;

/** Opens PgJDBC connections from the {@code postgres://} URLs the API returns (PgJDBC does not parse that form). */
final class PgUrls {
    private PgUrls() {}

    static Connection connect(String postgresUrl) throws SQLException {
        return connect(postgresUrl, null);
    }

    static Connection connect(String postgresUrl, String passwordOverride) throws SQLException {
        URI uri = URI.create(postgresUrl);
        String[] userInfo = uri.getRawUserInfo().split(":", 2);
        Properties properties = new Properties();
        properties.setProperty("user", URLDecoder.decode(userInfo[0], StandardCharsets.UTF_8));
        properties.setProperty("password", passwordOverride != null ? passwordOverride
                : URLDecoder.decode(userInfo[1], StandardCharsets.UTF_8));
        properties.setProperty("connectTimeout", "10");
        String query = uri.getRawQuery() == null ? "" : "?" + uri.getRawQuery();
        return DriverManager.getConnection(
                "jdbc:postgresql://" + uri.getHost() + ":" + uri.getPort() + uri.getRawPath() + query, properties);
    }
}
