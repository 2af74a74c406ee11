package io.palisade.bench.vm;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;

/**
 * One provisioned benchmark database: its rung, instance and tenant login. {@code toString} never prints the password.
 *
 * @param rung {@code vm} or {@code process}
 * @param instance what the driver returned (endpoint, details)
 * @param credentials the tenant login
 * @param createMillis provision call → driver returned, in milliseconds
 */
public record Tenant(String rung, RunningInstance instance, TenantCredentials credentials, long createMillis)
        implements TenantConnection {
    public Tenant {
        requireNonNull(rung, "rung is null");
        requireNonNull(instance, "instance is null");
        requireNonNull(credentials, "credentials is null");
    }

    public String id() {
        return instance.id();
    }

    public String jdbcUrl() {
        return "jdbc:postgresql://" + instance.endpoint() + "/" + credentials.database();
    }

    /** A new tenant connection over TCP (sslmode disabled: the benchmarks measure the database, not TLS). */
    @Override
    public Connection connect() throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", credentials.username());
        properties.setProperty("password", credentials.password());
        properties.setProperty("sslmode", "disable");
        properties.setProperty("connectTimeout", "30");
        properties.setProperty("ApplicationName", "palisade-bench");
        return DriverManager.getConnection(jdbcUrl(), properties);
    }

    @Override
    public String toString() {
        return "Tenant[" + rung + " " + id() + " at " + instance.endpoint() + "]";
    }
}
