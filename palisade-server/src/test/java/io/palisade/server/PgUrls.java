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
        String host = uri.getHost();
        if (uri.getRawQuery() != null) {
            for (String parameter : uri.getRawQuery().split("&")) {
                String[] kv = parameter.split("=", 2);
                String value = kv.length > 1 ? URLDecoder.decode(kv[1], StandardCharsets.UTF_8) : "";
                if (kv[0].equals("hostaddr")) {
                    // PgJDBC has no hostaddr and sends no SNI to a name it cannot resolve: dial the address and name
                    // the database with the options form, as the API documents for such clients
                    host = value;
                    properties.setProperty("options", "endpoint=" + uri.getHost().split("\\.")[0]);
                } else {
                    properties.setProperty(kv[0], value);
                }
            }
        }
        return DriverManager.getConnection(
                "jdbc:postgresql://" + host + ":" + uri.getPort() + uri.getRawPath(), properties);
    }
}
