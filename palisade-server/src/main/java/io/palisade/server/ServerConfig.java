package io.palisade.server;

import io.palisade.spi.PalisadeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Every setting of {@code palisade serve}: dash-case keys prefixed by component, typed, validated and described. Unknown
 * keys fail start with a "did you mean". Immutable once built.
 */
public record ServerConfig(Map<String, String> values) {
    /** One setting: key, default (null = unset), description, whether it is a secret. */
    public record Key(String name, String defaultValue, String description, boolean secret) {}

    public static final List<Key> KEYS = List.of(
            new Key("server.data-dir", ".palisade/data", "Directory for all state: store, instances, secrets, TLS", false),
            new Key("server.host-id", null, "This host's id for pinning (default: the machine's hostname)", false),
            new Key("api.host", "127.0.0.1", "REST API bind address (plain HTTP unless api.tls.enabled)", false),
            new Key("api.port", "8080", "REST API port (0 = any free port)", false),
            new Key("api.tls.enabled", "false", "Serve the REST API, broker and metrics over HTTPS (default "
                    + "certificate: the proxy's, signed by the generated CA; it names localhost and 127.0.0.1)",
                    false),
            new Key("api.tls.certificate-file", null, "Operator certificate (PEM) for the API when api.tls.enabled",
                    false),
            new Key("api.tls.private-key-file", null, "PKCS#8 private key (PEM) for api.tls.certificate-file", true),
            new Key("api.create-wait", "120s", "How long POST /v1/databases blocks before answering 202", false),
            new Key("api.public-url", null, "Base URL clients use for the API and broker (default http://<api.host>:<port>)", false),
            new Key("metrics.token", null, "Bearer token for GET /metrics with per-database series (the admin API key "
                    + "works too; other accounts' keys see aggregate series only)", true),
            new Key("quota.databases", "100", "Databases one account may hold", false),
            new Key("quota.cpu-per-database", "8", "vCPU one database may have", false),
            new Key("quota.memory-mb-per-database", "16384", "Memory (MB) one database may have", false),
            new Key("quota.disk-mb-per-database", "65536", "Disk (MB) one database's plan may have", false),
            new Key("quota.cpu-total", "128", "vCPU all of one account's databases may have together", false),
            new Key("quota.memory-mb-total", "262144", "Memory (MB) all of one account's databases may have together",
                    false),
            new Key("quota.disk-mb-total", "1048576", "Disk (MB) all of one account's databases may have together",
                    false),
            new Key("store.url", null, "JDBC URL of an external PostgreSQL for metadata (default: embedded)", false),
            new Key("store.username", null, "User for store.url", false),
            new Key("store.password", null, "Password for store.url", true),
            new Key("agent.start-timeout", "120s", "Bound on a tenant server start", false),
            new Key("agent.restore-timeout", "1h", "Bound on the first start of a restored process database (WAL replay included)", false),
            new Key("agent.reconcile-interval", "5s", "How often the agent restarts dead instances, removes orphans and reaps expired ephemeral databases", false),
            new Key("agent.cgroup-parent", "palisade", "Parent cgroup name for per-instance caps", false),
            new Key("agent.stop-instances-on-exit", "true",
                    "Stop every instance when palisade stops gracefully (false: tenants keep running across control-plane restarts)", false),
            new Key("proxy.enabled", "true", "Serve every database on one TLS port routed by SNI (false: URLs point at instances)", false),
            new Key("proxy.bind-host", "127.0.0.1", "Address the PostgreSQL proxy listens on", false),
            new Key("proxy.port", "5432", "Port of the PostgreSQL proxy (0 = any free port)", false),
            new Key("proxy.public-port", null, "Port clients use if it differs (e.g. behind a load balancer)", false),
            new Key("proxy.domain", "db.localhost", "Databases are reached at <id>.<domain>", false),
            new Key("proxy.hostaddr", "auto", "Address put in URLs as libpq hostaddr= (auto: 127.0.0.1 for *.localhost domains; none)", false),
            new Key("proxy.tls.certificate-file", null, "Operator certificate (PEM) for *.<domain>; default: a generated local CA", false),
            new Key("proxy.tls.private-key-file", null, "Private key (PEM) for proxy.tls.certificate-file", true),
            new Key("proxy.max-connections-per-database", "100", "Client connections allowed per database", false),
            new Key("proxy.max-unauthenticated-connections", "1000", "Proxy connections still authenticating, in total", false),
            new Key("proxy.max-unauthenticated-per-source", "64", "Proxy connections still authenticating from one address (IPv6: one /64)", false),
            new Key("proxy.authentication-timeout", "10s", "Time a proxy client has from connect to a proven login", false),
            new Key("vm.image-dir", ".cache/guest/current", "Guest image built by guest/build.sh", false),
            new Key("vm.accelerator", "auto", "auto (KVM where the CPU has vmx/svm, else TCG), kvm or tcg", false),
            new Key("vm.network-pool", "10.213.0.0/16", "Per-host pool of /30 links to the VMs' network namespaces", false),
            new Key("vm.suspend-after", "300s", "Default idle period before a vm database is suspended to disk (or never)", false),
            new Key("vm.boot-timeout", "90s", "Bound on one guest boot before the watchdog retries it", false),
            new Key("vm.restore-timeout", "1h", "Bound on the first boot of a restored vm database (WAL replay included)", false),
            new Key("shared.tenants-per-server", "500", "database/schema rungs: tenants one shared server takes before palisade starts another", false),
            new Key("shared.server-cpu", "2", "database/schema rungs: CPU cap of one shared server", false),
            new Key("shared.server-memory-mb", "2048", "database/schema rungs: memory cap of one shared server (placement stops at 90 %)", false),
            new Key("shared.server-disk-mb", "65536", "database/schema rungs: placement stops once a shared server's data holds this much", false),
            new Key("shared.max-connections", "300", "database/schema rungs: max_connections of one shared server (each tenant's own limit is at most a quarter)", false),
            new Key("shared.statement-timeout", null, "database/schema rungs: statement_timeout of new tenants (default: from the plan, 30s for nano)", false),
            new Key("shared.idle-in-transaction-timeout", null, "database/schema rungs: idle_in_transaction_session_timeout of new tenants (default 60s)", false),
            new Key("agent.service-user", "palisade", "Unprivileged OS user for templates; tenants get <this>-<id> users, the store <this>-store (as root)", false),
            new Key("backup.enabled", "true", "Continuous WAL archiving and base backups of every persistent database", false),
            new Key("backup.storage", "local", "Where archives go: local (a directory) or s3 (an S3-compatible object store)", false),
            new Key("backup.local-dir", null, "Archive directory for backup.storage=local (default <data-dir>/backups)", false),
            new Key("backup.s3.endpoint", null, "S3 endpoint URL (omit for AWS)", false),
            new Key("backup.s3.region", "us-east-1", "S3 region", false),
            new Key("backup.s3.bucket", null, "S3 bucket (must exist)", false),
            new Key("backup.s3.prefix", "palisade/", "Key prefix inside the bucket", false),
            new Key("backup.s3.access-key-id", null, "S3 access key id", false),
            new Key("backup.s3.secret-access-key", null, "S3 secret access key", true),
            new Key("backup.s3.path-style", "true", "Path-style S3 URLs (true for most S3-compatible servers)", false),
            new Key("backup.base-interval", "24h", "Default interval between scheduled base backups of a database", false),
            new Key("backup.retention", "7d", "Default restorable window kept per database", false),
            new Key("backup.max-rate", "32768", "Base backup read limit in kB/s per database (0 = unlimited)", false),
            new Key("backup.flush-interval", "500ms", "Longest time streamed WAL waits before it is written to the archive (async durability)", false));

    private static final Map<String, Key> BY_NAME;

    static {
        Map<String, Key> byName = new LinkedHashMap<>();
        KEYS.forEach(key -> byName.put(key.name(), key));
        BY_NAME = Map.copyOf(byName);
    }

    public ServerConfig {
        values = Map.copyOf(values);
    }

    /** Validates the given settings against the known keys and fills in defaults. */
    public static ServerConfig from(Map<String, String> settings) {
        Map<String, String> values = new TreeMap<>();
        for (Key key : KEYS) {
            if (key.defaultValue() != null) {
                values.put(key.name(), key.defaultValue());
            }
        }
        settings.forEach((name, value) -> {
            if (!BY_NAME.containsKey(name)) {
                String hint = closest(name).map(k -> "; did you mean '" + k + "'?").orElse("");
                throw PalisadeException.invalid("unknown configuration key '" + name + "'" + hint);
            }
            values.put(name, value);
        });
        ServerConfig config = new ServerConfig(values);
        config.validate();
        return config;
    }

    private void validate() {
        int port = apiPort();
        if (port < 0 || port > 65535) {
            throw PalisadeException.invalid("api.port must be between 0 and 65535, got " + port);
        }
        createWait();
        startTimeout();
        reconcileInterval();
        restoreTimeout();
        vmBootTimeout();
        vmRestoreTimeout();
        vmSuspendAfter();
        sharedStatementTimeout();
        sharedIdleInTransactionTimeout();
        quotas();
        apiTlsEnabled();
        if (apiTlsCertificateFile().isPresent() != apiTlsPrivateKeyFile().isPresent()) {
            throw PalisadeException.invalid("api.tls.certificate-file and api.tls.private-key-file go together");
        }
        if (apiTlsCertificateFile().isPresent() && !apiTlsEnabled()) {
            throw PalisadeException.invalid("api.tls.certificate-file is set but api.tls.enabled is false; set "
                    + "api.tls.enabled=true to serve it");
        }
        if (metricsToken().isPresent() && metricsToken().get().length() < 16) {
            throw PalisadeException.invalid("metrics.token must be at least 16 characters long");
        }
        proxyEnabled();
        int proxyPort = proxyPort();
        if (proxyPort < 0 || proxyPort > 65535) {
            throw PalisadeException.invalid("proxy.port must be between 0 and 65535, got " + proxyPort);
        }
        proxyPublicPort();
        proxyMaxConnectionsPerDatabase();
        proxyPreAuthentication();
        if (proxyCertificateFile().isPresent() != proxyPrivateKeyFile().isPresent()) {
            throw PalisadeException.invalid("proxy.tls.certificate-file and proxy.tls.private-key-file go together");
        }
        String stop = get("agent.stop-instances-on-exit");
        if (!stop.equals("true") && !stop.equals("false")) {
            throw PalisadeException.invalid("agent.stop-instances-on-exit must be true or false, got '" + stop + "'");
        }
        backupConfig();
        parseBoolean("backup.s3.path-style");
        if (!backupStorage().equals("local") && !backupStorage().equals("s3")) {
            throw PalisadeException.invalid("backup.storage must be local or s3, got '" + backupStorage() + "'");
        }
        if (backupStorage().equals("s3")) {
            backupS3();
        }
        if (storeUrl().isPresent() && !storeUrl().get().startsWith("jdbc:postgresql:")) {
            throw PalisadeException.invalid("store.url must be a jdbc:postgresql: URL");
        }
    }

    static Optional<String> closest(String name) {
        return KEYS.stream()
                .map(Key::name)
                .min(Comparator.comparingInt(candidate -> distance(candidate, name)))
                .filter(candidate -> distance(candidate, name) <= Math.max(3, name.length() / 3));
    }

    static int distance(String a, String b) {
        int[] previous = new int[b.length() + 1];
        int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                current[j] = Math.min(Math.min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }

    private String get(String key) {
        return values.get(key);
    }

    public Path dataDir() {
        return Path.of(get("server.data-dir")).toAbsolutePath().normalize();
    }

    public String hostId() {
        String configured = get("server.host-id");
        if (configured != null) {
            return configured;
        }
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            return "localhost";
        }
    }

    public String apiHost() {
        return get("api.host");
    }

    public int apiPort() {
        return parseInt("api.port");
    }

    public boolean apiTlsEnabled() {
        return parseBoolean("api.tls.enabled");
    }

    public Optional<Path> apiTlsCertificateFile() {
        return Optional.ofNullable(get("api.tls.certificate-file")).map(Path::of);
    }

    public Optional<Path> apiTlsPrivateKeyFile() {
        return Optional.ofNullable(get("api.tls.private-key-file")).map(Path::of);
    }

    public Optional<String> apiPublicUrl() {
        return Optional.ofNullable(get("api.public-url"));
    }

    public Duration createWait() {
        return parseDuration("api.create-wait");
    }

    /** The per-account quotas ({@code quota.*}). */
    public io.palisade.api.AccountQuotas quotas() {
        return new io.palisade.api.AccountQuotas(parseInt("quota.databases"), parseInt("quota.cpu-per-database"),
                parseInt("quota.memory-mb-per-database"), parseInt("quota.disk-mb-per-database"),
                parseInt("quota.cpu-total"), parseInt("quota.memory-mb-total"), parseLong("quota.disk-mb-total"));
    }

    public Optional<String> metricsToken() {
        return Optional.ofNullable(get("metrics.token")).filter(token -> !token.isBlank());
    }

    public Optional<String> storeUrl() {
        return Optional.ofNullable(get("store.url"));
    }

    public Optional<String> storeUsername() {
        return Optional.ofNullable(get("store.username"));
    }

    public Optional<String> storePassword() {
        return Optional.ofNullable(get("store.password"));
    }

    public Duration startTimeout() {
        return parseDuration("agent.start-timeout");
    }

    public Duration restoreTimeout() {
        return parseDuration("agent.restore-timeout");
    }

    public Duration reconcileInterval() {
        return parseDuration("agent.reconcile-interval");
    }

    public String cgroupParent() {
        return get("agent.cgroup-parent");
    }

    public boolean stopInstancesOnExit() {
        return Boolean.parseBoolean(get("agent.stop-instances-on-exit"));
    }

    public boolean proxyEnabled() {
        return parseBoolean("proxy.enabled");
    }

    public String proxyBindHost() {
        return get("proxy.bind-host");
    }

    public int proxyPort() {
        return parseInt("proxy.port");
    }

    public java.util.OptionalInt proxyPublicPort() {
        return get("proxy.public-port") == null ? java.util.OptionalInt.empty()
                : java.util.OptionalInt.of(parseInt("proxy.public-port"));
    }

    public String proxyDomain() {
        return get("proxy.domain");
    }

    public Optional<String> proxyHostaddr() {
        String value = get("proxy.hostaddr");
        if (value.equals("none")) {
            return Optional.empty();
        }
        if (value.equals("auto")) {
            return proxyDomain().endsWith("localhost") ? Optional.of("127.0.0.1") : Optional.empty();
        }
        return Optional.of(value);
    }

    public Optional<Path> proxyCertificateFile() {
        return Optional.ofNullable(get("proxy.tls.certificate-file")).map(Path::of);
    }

    public Optional<Path> proxyPrivateKeyFile() {
        return Optional.ofNullable(get("proxy.tls.private-key-file")).map(Path::of);
    }

    public int proxyMaxConnectionsPerDatabase() {
        return parseInt("proxy.max-connections-per-database");
    }

    /** The proxy's limits before authentication: in total, per source address, and the deadline. */
    public record ProxyPreAuthentication(int maxConnections, int maxPerSource, Duration timeout) {}

    public ProxyPreAuthentication proxyPreAuthentication() {
        int total = parseInt("proxy.max-unauthenticated-connections");
        int perSource = parseInt("proxy.max-unauthenticated-per-source");
        Duration timeout = parseDuration("proxy.authentication-timeout");
        if (total < 1 || perSource < 1 || timeout.isZero() || timeout.isNegative()) {
            throw PalisadeException.invalid("proxy.max-unauthenticated-connections and "
                    + "proxy.max-unauthenticated-per-source must be at least 1 and proxy.authentication-timeout "
                    + "positive, got " + total + ", " + perSource + ", " + timeout);
        }
        return new ProxyPreAuthentication(total, perSource, timeout);
    }

    private boolean parseBoolean(String key) {
        String value = get(key);
        if (!value.equals("true") && !value.equals("false")) {
            throw PalisadeException.invalid(key + " must be true or false, got '" + value + "'");
        }
        return Boolean.parseBoolean(value);
    }

    public Path vmImageDir() {
        return Path.of(get("vm.image-dir")).toAbsolutePath().normalize();
    }

    public String vmAccelerator() {
        return get("vm.accelerator");
    }

    public String vmNetworkPool() {
        return get("vm.network-pool");
    }

    public java.util.Optional<Duration> vmSuspendAfter() {
        return get("vm.suspend-after").equals("never") ? java.util.Optional.empty()
                : java.util.Optional.of(parseDuration("vm.suspend-after"));
    }

    public Duration vmRestoreTimeout() {
        return parseDuration("vm.restore-timeout");
    }

    public Duration vmBootTimeout() {
        return parseDuration("vm.boot-timeout");
    }

    public String serviceUser() {
        return get("agent.service-user");
    }

    public boolean backupEnabled() {
        return parseBoolean("backup.enabled");
    }

    /** The backup settings; throws on invalid values (called by validate at start). */
    public io.palisade.backup.BackupConfig backupConfig() {
        try {
            return new io.palisade.backup.BackupConfig(backupEnabled(), parseDuration("backup.base-interval"),
                    parseDuration("backup.retention"), parseInt("backup.max-rate"), parseDuration("backup.flush-interval"),
                    dataDir().resolve("backup-staging"));
        } catch (IllegalArgumentException e) {
            throw PalisadeException.invalid(e.getMessage());
        }
    }

    public String backupStorage() {
        return get("backup.storage");
    }

    public Path backupLocalDir() {
        return Optional.ofNullable(get("backup.local-dir")).map(Path::of).orElse(dataDir().resolve("backups"));
    }

    public io.palisade.backup.store.S3Settings backupS3() {
        String bucket = get("backup.s3.bucket");
        if (bucket == null) {
            throw PalisadeException.invalid("backup.storage=s3 needs backup.s3.bucket");
        }
        if (get("backup.s3.access-key-id") == null || get("backup.s3.secret-access-key") == null) {
            throw PalisadeException.invalid(
                    "backup.storage=s3 needs backup.s3.access-key-id and backup.s3.secret-access-key");
        }
        try {
            return new io.palisade.backup.store.S3Settings(
                    Optional.ofNullable(get("backup.s3.endpoint")).map(java.net.URI::create),
                    get("backup.s3.region"), bucket, get("backup.s3.prefix"), get("backup.s3.access-key-id"),
                    get("backup.s3.secret-access-key"), parseBoolean("backup.s3.path-style"));
        } catch (IllegalArgumentException e) {
            throw PalisadeException.invalid("invalid S3 settings: " + e.getMessage());
        }
    }

    /** The shared servers behind the database and schema rungs. */
    public io.palisade.agent.shared.SharedServerConfig sharedServers(java.nio.file.Path serversDir, java.nio.file.Path cacheDir,
            io.palisade.host.ServiceUser user, io.palisade.host.Cgroups cgroups) {
        try {
            return new io.palisade.agent.shared.SharedServerConfig(serversDir, cacheDir, user, cgroups, startTimeout(),
                    parseInt("shared.tenants-per-server"), parseInt("shared.server-cpu"),
                    parseInt("shared.server-memory-mb"), parseInt("shared.server-disk-mb"),
                    parseInt("shared.max-connections"), java.time.Duration.ofSeconds(1), sharedStatementTimeout(),
                    sharedIdleInTransactionTimeout());
        } catch (IllegalArgumentException e) {
            throw PalisadeException.invalid(e.getMessage());
        }
    }

    /** The statement_timeout every new shared-rung tenant gets instead of its plan's, if set. */
    public Optional<Duration> sharedStatementTimeout() {
        return Optional.ofNullable(get("shared.statement-timeout")).map(v -> parseDuration("shared.statement-timeout"));
    }

    /** The idle_in_transaction_session_timeout every new shared-rung tenant gets instead of its plan's, if set. */
    public Optional<Duration> sharedIdleInTransactionTimeout() {
        return Optional.ofNullable(get("shared.idle-in-transaction-timeout"))
                .map(v -> parseDuration("shared.idle-in-transaction-timeout"));
    }

    private int parseInt(String key) {
        try {
            return Integer.parseInt(get(key));
        } catch (NumberFormatException e) {
            throw PalisadeException.invalid(key + " must be an integer, got '" + get(key) + "'");
        }
    }

    private long parseLong(String key) {
        try {
            return Long.parseLong(get(key));
        } catch (NumberFormatException e) {
            throw PalisadeException.invalid(key + " must be an integer, got '" + get(key) + "'");
        }
    }

    private Duration parseDuration(String key) {
        String text = get(key);
        try {
            Duration duration;
            if (text.endsWith("ms")) {
                duration = Duration.ofMillis(Long.parseLong(text.substring(0, text.length() - 2)));
            } else if (text.endsWith("s")) {
                duration = Duration.ofSeconds(Long.parseLong(text.substring(0, text.length() - 1)));
            } else if (text.endsWith("m")) {
                duration = Duration.ofMinutes(Long.parseLong(text.substring(0, text.length() - 1)));
            } else if (text.endsWith("h")) {
                duration = Duration.ofHours(Long.parseLong(text.substring(0, text.length() - 1)));
            } else if (text.endsWith("d")) {
                duration = Duration.ofDays(Long.parseLong(text.substring(0, text.length() - 1)));
            } else {
                throw new NumberFormatException();
            }
            if (duration.isNegative() || duration.isZero()) {
                throw PalisadeException.invalid(key + " must be positive, got '" + text + "'");
            }
            return duration;
        } catch (NumberFormatException e) {
            throw PalisadeException.invalid(key + " must be a duration like 500ms, 30s, 5m, 24h or 7d, got '" + text + "'");
        }
    }

    /** The settings for logs: secrets masked. */
    @Override
    public String toString() {
        Map<String, String> shown = new TreeMap<>(values);
        KEYS.stream().filter(Key::secret).forEach(key -> shown.computeIfPresent(key.name(), (k, v) -> "***"));
        return shown.toString();
    }
}
