package io.palisade.server;

import io.palisade.api.ConnectionInfo;
import io.palisade.spi.Endpoint;
import io.palisade.spi.TenantCredentials;
import io.palisade.store.DatabaseRecord;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/** Connection fields that point straight at the instance (no proxy configured). Stateless. */
final class DirectConnectionInfo implements ConnectionInfo {
    private final java.util.function.Supplier<String> apiBaseUrl;

    DirectConnectionInfo(java.util.function.Supplier<String> apiBaseUrl) {
        this.apiBaseUrl = apiBaseUrl;
    }

    @Override
    public Map<String, Object> describe(DatabaseRecord database, TenantCredentials credentials) {
        Map<String, Object> out = new LinkedHashMap<>();
        Endpoint endpoint = database.endpoint().orElse(null);
        out.put("host", endpoint == null ? null : endpoint.host());
        out.put("port", endpoint == null ? null : endpoint.port());
        out.put("database", credentials.database());
        out.put("connection_url", endpoint == null ? null
                : "postgres://" + enc(credentials.username()) + ":" + enc(credentials.password()) + "@" + endpoint + "/"
                        + enc(credentials.database()) + "?sslmode=disable");
        if (endpoint != null) {
            out.put("jdbc_url", "jdbc:postgresql://" + endpoint + "/" + credentials.database() + "?sslmode=disable");
            out.put("libpq_env", Map.of(
                    "PGHOST", endpoint.host(),
                    "PGPORT", Integer.toString(endpoint.port()),
                    "PGDATABASE", credentials.database(),
                    "PGUSER", credentials.username(),
                    "PGSSLMODE", "disable"));
        }
        return out;
    }

    @Override
    public String brokerUrl(DatabaseRecord database) {
        return apiBaseUrl.get() + "/v1/databases/" + database.id() + "/proxy";
    }

    private static String enc(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }
}
