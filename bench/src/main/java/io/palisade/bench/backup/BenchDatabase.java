package io.palisade.bench.backup;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Map;
import java.util.Properties;

/**
 * A database the API created, restored or forked, with the connection fields of its 201 answer (the server runs
 * without the proxy, so they point straight at the instance). {@code toString} never prints the password.
 */
public record BenchDatabase(String id, String host, int port, String database, String username, String password) {
    public BenchDatabase {
        requireNonNull(id, "id is null");
        requireNonNull(host, "host is null");
        requireNonNull(database, "database is null");
        requireNonNull(username, "username is null");
        requireNonNull(password, "password is null");
    }

    static BenchDatabase from(JsonNode created) {
        return new BenchDatabase(created.get("id").asText(), created.get("host").asText(), created.get("port").asInt(),
                created.get("database").asText(), created.get("username").asText(), created.get("password").asText());
    }

    /** A new PgJDBC connection (sslmode disabled: the benchmark measures the database, not TLS). */
    public Connection connect() throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", username);
        properties.setProperty("password", password);
        properties.setProperty("sslmode", "disable");
        properties.setProperty("connectTimeout", "30");
        properties.setProperty("ApplicationName", "palisade-bench");
        return DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/" + database, properties);
    }

    /** libpq's environment for this database, password included (for a child process, never its command line). */
    Map<String, String> libpqEnvironment() {
        return Map.of("PGHOST", host, "PGPORT", Integer.toString(port), "PGDATABASE", database, "PGUSER", username,
                "PGPASSWORD", password, "PGSSLMODE", "disable", "PGCONNECT_TIMEOUT", "30");
    }

    @Override
    public String toString() {
        return "BenchDatabase[" + id + " at " + host + ":" + port + "]";
    }
}
