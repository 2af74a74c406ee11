package io.palisade.server;

import io.palisade.api.ConnectionInfo;
import io.palisade.spi.TenantCredentials;
import io.palisade.store.DatabaseRecord;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.IntSupplier;
import java.util.function.Supplier;

/**
 * Connection fields that go through the TLS proxy: the database is the first label of {@code <id>.<domain>}. When the
 * domain has no wildcard DNS (the {@code .localhost} default) the libpq URL carries {@code hostaddr=} so libpq connects
 * to that address and still sends the hostname as SNI and verifies the certificate against it; clients that send no
 * SNI (PgJDBC, node-postgres) get a URL with {@code options=endpoint=<id>}. Stateless.
 */
final class ProxyConnectionInfo implements ConnectionInfo {
    private final String domain;
    private final IntSupplier publicPort;
    private final Optional<String> hostaddr;
    private final Optional<Path> caFile;
    private final Supplier<String> apiBaseUrl;

    ProxyConnectionInfo(
            String domain, IntSupplier publicPort, Optional<String> hostaddr, Optional<Path> caFile, Supplier<String> apiBaseUrl) {
        this.domain = domain;
        this.publicPort = publicPort;
        this.hostaddr = hostaddr;
        this.caFile = caFile;
        this.apiBaseUrl = apiBaseUrl;
    }

    @Override
    public Map<String, Object> describe(DatabaseRecord database, TenantCredentials credentials) {
        String host = database.id() + "." + domain;
        int port = publicPort.getAsInt();
        String userInfo = enc(credentials.username()) + ":" + enc(credentials.password());
        String tls = caFile.map(ca -> "sslmode=verify-full&sslrootcert=" + enc(ca.toString())).orElse("sslmode=verify-full");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("host", host);
        out.put("port", port);
        out.put("database", credentials.database());
        out.put("connection_url", "postgres://" + userInfo + "@" + host + ":" + port + "/" + enc(credentials.database()) + "?"
                + tls + hostaddr.map(a -> "&hostaddr=" + a).orElse(""));
        // for @neondatabase/serverless (SQL over HTTP / WebSocket through the broker): host names the database
        out.put("serverless_url", "postgres://" + userInfo + "@" + host + "/" + enc(credentials.database()) + "?sslmode=require");
        String direct = hostaddr.orElse(host);
        out.put("connection_url_no_sni", "postgres://" + userInfo + "@" + direct + ":" + port + "/"
                + enc(credentials.database()) + "?sslmode=require&options=endpoint%3D" + database.id());
        out.put("jdbc_url", "jdbc:postgresql://" + direct + ":" + port + "/" + credentials.database() + "?"
                + caFile.map(ca -> "sslmode=verify-ca&sslrootcert=" + enc(ca.toString())).orElse("sslmode=verify-full")
                + "&options=endpoint%3D" + database.id());
        Map<String, String> env = new LinkedHashMap<>();
        env.put("PGHOST", host);
        hostaddr.ifPresent(a -> env.put("PGHOSTADDR", a));
        env.put("PGPORT", Integer.toString(port));
        env.put("PGDATABASE", credentials.database());
        env.put("PGUSER", credentials.username());
        env.put("PGSSLMODE", "verify-full");
        caFile.ifPresent(ca -> env.put("PGSSLROOTCERT", ca.toString()));
        out.put("libpq_env", env);
        caFile.ifPresent(ca -> out.put("ca_certificate", ca.toString()));
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
