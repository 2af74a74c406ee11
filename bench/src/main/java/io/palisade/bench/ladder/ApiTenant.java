package io.palisade.bench.ladder;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.bench.backup.PalisadeApi;
import io.palisade.bench.vm.TenantConnection;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

/**
 * A database the API created, reached the way a client reaches it: through the proxy with the {@code jdbc_url} of
 * the 201 answer (TLS verified against palisade's CA, the database named by {@code options=endpoint=<id>}).
 * {@code toString} never prints the password.
 *
 * @param rung the isolation it was created with
 */
public record ApiTenant(String id, String rung, String jdbcUrl, String username, String password)
        implements TenantConnection {
    public ApiTenant {
        requireNonNull(id, "id is null");
        requireNonNull(rung, "rung is null");
        requireNonNull(jdbcUrl, "jdbcUrl is null");
        requireNonNull(username, "username is null");
        requireNonNull(password, "password is null");
    }

    /** One create: the tenant, request → 201, and request → its first {@code SELECT 1} answered. */
    public record Created(ApiTenant tenant, double answerMillis, double firstQueryMillis) {
        public Created {
            requireNonNull(tenant, "tenant is null");
        }
    }

    /**
     * {@code POST /v1/databases} with {@code isolation} (a vm database never suspends by itself: the benchmark
     * decides), then the first {@code SELECT 1} through the returned URL. Fails unless the answer is 201 and the query answers.
     */
    public static Created create(PalisadeApi api, String isolation, String label) throws SQLException {
        String body = "{\"label\":\"" + label + "\",\"isolation\":\"" + isolation + "\""
                + (isolation.equals("vm") ? ",\"suspend_after_seconds\":\"never\"" : "") + "}";
        long start = System.nanoTime();
        PalisadeApi.Response response = api.send("POST", "/v1/databases", body);
        double answered = (System.nanoTime() - start) / 1e6;
        if (response.status() != 201) {
            throw new IllegalStateException("create of a " + isolation + " database answered " + response.status()
                    + ": " + response.json());
        }
        JsonNode json = response.json();
        ApiTenant tenant = new ApiTenant(json.get("id").asText(), isolation, json.get("jdbc_url").asText(),
                json.get("username").asText(), json.get("password").asText());
        tenant.selectOne();
        return new Created(tenant, answered, (System.nanoTime() - start) / 1e6);
    }

    /** Connects, runs {@code SELECT 1} and checks the answer. */
    public void selectOne() throws SQLException {
        try (Connection connection = connect();
                Statement statement = connection.createStatement();
                ResultSet rows = statement.executeQuery("SELECT 1")) {
            if (!rows.next() || rows.getInt(1) != 1) {
                throw new SQLException("SELECT 1 of " + this + " returned no 1");
            }
        }
    }

    /** A new connection through the proxy (60 s to connect: a suspended vm database wakes first). */
    @Override
    public Connection connect() throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", username);
        properties.setProperty("password", password);
        properties.setProperty("connectTimeout", "60");
        properties.setProperty("socketTimeout", "120");
        properties.setProperty("ApplicationName", "palisade-bench");
        return DriverManager.getConnection(jdbcUrl, properties);
    }

    @Override
    public String toString() {
        return "ApiTenant[" + rung + " " + id + "]";
    }
}
