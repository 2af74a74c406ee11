package io.palisade.server;

import static io.palisade.server.ConfigKeys.*;

import io.palisade.api.AccountQuotas;
import io.palisade.backup.BackupConfig;
import io.palisade.backup.store.S3Settings;
import io.palisade.broker.BrokerConfig;
import io.palisade.proxy.ProxyConfig;
import io.palisade.spi.PalisadeException;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * The settings of {@code palisade serve}, parsed and validated against the keys declared in {@link ConfigKeys}: an
 * unknown key fails with a "did you mean", an invalid value with one line naming the key, the value and what is
 * expected, and keys that only make sense together are checked together. Accessors return typed values, and the
 * components' own configurations ({@link #brokerConfig()}, {@link #proxyConfig(Path)}, …) are built from them.
 * Immutable, safe to share between threads.
 */
public final class ServerConfig {
    private static final Map<String, Setting<?>> BY_NAME;

    static {
        Map<String, Setting<?>> byName = new LinkedHashMap<>();
        ConfigKeys.ALL.forEach(key -> byName.put(key.name(), key));
        BY_NAME = Map.copyOf(byName);
    }

    private final Map<String, String> text;
    private final Map<String, Object> values;

    private ServerConfig(Map<String, String> text, Map<String, Object> values) {
        this.text = Map.copyOf(text);
        this.values = Map.copyOf(values);
    }

    /** Validates the given settings against the declared keys and fills in defaults; throws on the first problem. */
    public static ServerConfig from(Map<String, String> settings) {
        for (String name : new TreeMap<>(settings).keySet()) {
            if (!BY_NAME.containsKey(name)) {
                List<String> hints = closest(name);
                throw PalisadeException.invalid("unknown configuration key '" + name + "'" + (hints.isEmpty()
                        ? "; palisade serve --help-config lists every key"
                        : "; did you mean '" + String.join("' or '", hints) + "'?"));
            }
        }
        Map<String, String> text = new HashMap<>();
        ConfigKeys.ALL.forEach(key -> key.defaultValue().ifPresent(value -> text.put(key.name(), value)));
        settings.forEach((name, value) -> text.put(name, value.strip()));
        Map<String, Object> values = new HashMap<>();
        for (Setting<?> key : ConfigKeys.ALL) {
            String value = text.get(key.name());
            if (value != null) {
                values.put(key.name(), key.parse(value));
            }
        }
        ServerConfig config = new ServerConfig(text, values);
        config.validate();
        return config;
    }

    /** The checks that concern more than one key, and those of the components' own configurations. */
    private void validate() {
        if (apiTlsCertificateFile().isPresent() != apiTlsPrivateKeyFile().isPresent()) {
            throw PalisadeException.invalid(
                    "api.tls.certificate-file and api.tls.private-key-file go together; set both or neither");
        }
        if (apiTlsCertificateFile().isPresent() && !apiTlsEnabled()) {
            throw PalisadeException.invalid("api.tls.certificate-file is set but api.tls.enabled is false; set "
                    + "api.tls.enabled=true to serve it");
        }
        if (proxyCertificateFile().isPresent() != proxyPrivateKeyFile().isPresent()) {
            throw PalisadeException.invalid("proxy.tls.certificate-file and proxy.tls.private-key-file go together; "
                    + "set both or neither (neither: a generated local CA)");
        }
        if (backupStorage().equals("s3")) {
            backupS3();
        }
        io.palisade.vmm.NetworkPool.parse(vmNetworkPool());
        quotas();
        backupConfig();
        brokerConfig();
        proxyConfig(Path.of("tls"));
    }

    /**
     * The keys the given (unknown) name was probably meant to be: the same key written with other case or
     * underscores, else the keys it names without their component prefix (e.g. {@code max-rows}), else the nearest
     * by edit distance if it is near enough.
     */
    static List<String> closest(String name) {
        String wanted = name.strip().toLowerCase(Locale.ROOT).replace('_', '-');
        if (BY_NAME.containsKey(wanted)) {
            return List.of(wanted);
        }
        List<String> suffixed = new ArrayList<>();
        for (Setting<?> key : ConfigKeys.ALL) {
            if (key.name().endsWith("." + wanted)) {
                suffixed.add(key.name());
            }
        }
        if (!suffixed.isEmpty() && suffixed.size() <= 3) {
            return suffixed;
        }
        return ConfigKeys.ALL.stream()
                .map(Setting::name)
                .min(Comparator.comparingInt(candidate -> distance(candidate, wanted)))
                .filter(candidate -> distance(candidate, wanted) <= Math.max(3, wanted.length() / 3))
                .map(List::of)
                .orElse(List.of());
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

    /** The value of a key that has a default (or is set). */
    public <T> T get(Setting<T> key) {
        return find(key).orElseThrow(() -> new IllegalStateException(key.name() + " has no default and is not set"));
    }

    /** The value of a key, empty if it has no default and is not set. */
    @SuppressWarnings("unchecked")
    public <T> Optional<T> find(Setting<T> key) {
        if (BY_NAME.get(key.name()) != key) {
            throw new IllegalArgumentException("not a declared configuration key: " + key.name());
        }
        return Optional.ofNullable((T) values.get(key.name()));
    }

    public Path dataDir() {
        return get(SERVER_DATA_DIR).toAbsolutePath().normalize();
    }

    public String hostId() {
        return find(SERVER_HOST_ID).orElseGet(() -> {
            try {
                return java.net.InetAddress.getLocalHost().getHostName();
            } catch (java.net.UnknownHostException e) {
                return "localhost";
            }
        });
    }

    public String apiHost() {
        return get(API_HOST);
    }

    public int apiPort() {
        return get(API_PORT);
    }

    public boolean apiTlsEnabled() {
        return get(API_TLS_ENABLED);
    }

    public Optional<Path> apiTlsCertificateFile() {
        return find(API_TLS_CERTIFICATE_FILE);
    }

    public Optional<Path> apiTlsPrivateKeyFile() {
        return find(API_TLS_PRIVATE_KEY_FILE);
    }

    public Optional<String> apiPublicUrl() {
        return find(API_PUBLIC_URL);
    }

    public Duration createWait() {
        return get(API_CREATE_WAIT);
    }

    /** The per-account quotas ({@code quota.*}). */
    public AccountQuotas quotas() {
        return new AccountQuotas(get(QUOTA_DATABASES), get(QUOTA_CPU_PER_DATABASE), get(QUOTA_MEMORY_MB_PER_DATABASE),
                get(QUOTA_DISK_MB_PER_DATABASE), get(QUOTA_CPU_TOTAL), get(QUOTA_MEMORY_MB_TOTAL),
                get(QUOTA_DISK_MB_TOTAL));
    }

    public Optional<String> metricsToken() {
        return find(METRICS_TOKEN);
    }

    public Optional<String> storeUrl() {
        return find(STORE_URL);
    }

    public Optional<String> storeUsername() {
        return find(STORE_USERNAME);
    }

    public Optional<String> storePassword() {
        return find(STORE_PASSWORD);
    }

    public Duration startTimeout() {
        return get(AGENT_START_TIMEOUT);
    }

    public Duration restoreTimeout() {
        return get(AGENT_RESTORE_TIMEOUT);
    }

    public Duration reconcileInterval() {
        return get(AGENT_RECONCILE_INTERVAL);
    }

    public String cgroupParent() {
        return get(AGENT_CGROUP_PARENT);
    }

    public boolean stopInstancesOnExit() {
        return get(AGENT_STOP_INSTANCES_ON_EXIT);
    }

    public String serviceUser() {
        return get(AGENT_SERVICE_USER);
    }

    public boolean proxyEnabled() {
        return get(PROXY_ENABLED);
    }

    public String proxyBindHost() {
        return get(PROXY_BIND_HOST);
    }

    public int proxyPort() {
        return get(PROXY_PORT);
    }

    public OptionalInt proxyPublicPort() {
        return find(PROXY_PUBLIC_PORT).map(OptionalInt::of).orElse(OptionalInt.empty());
    }

    public String proxyDomain() {
        return get(PROXY_DOMAIN);
    }

    public Optional<String> proxyHostaddr() {
        String value = get(PROXY_HOSTADDR);
        if (value.equals("none")) {
            return Optional.empty();
        }
        if (value.equals("auto")) {
            return proxyDomain().endsWith("localhost") ? Optional.of("127.0.0.1") : Optional.empty();
        }
        return Optional.of(value);
    }

    public Optional<Path> proxyCertificateFile() {
        return find(PROXY_TLS_CERTIFICATE_FILE);
    }

    public Optional<Path> proxyPrivateKeyFile() {
        return find(PROXY_TLS_PRIVATE_KEY_FILE);
    }

    public int proxyMaxConnectionsPerDatabase() {
        return get(PROXY_MAX_CONNECTIONS_PER_DATABASE);
    }

    /** The PostgreSQL proxy's configuration ({@code proxy.*}), generated TLS material under {@code tlsDirectory}. */
    public ProxyConfig proxyConfig(Path tlsDirectory) {
        return component("proxy", () -> {
            ProxyConfig proxy = ProxyConfig.defaults(proxyDomain(), tlsDirectory)
                    .withBind(proxyBindHost(), proxyPort())
                    .withLimits(proxyMaxConnectionsPerDatabase(), get(PROXY_MAX_CLIENT_CONNECTIONS))
                    .withPreAuthentication(get(PROXY_MAX_UNAUTHENTICATED_CONNECTIONS),
                            get(PROXY_MAX_UNAUTHENTICATED_PER_SOURCE), get(PROXY_AUTHENTICATION_TIMEOUT))
                    .withTimeouts(get(PROXY_TLS_HANDSHAKE_TIMEOUT), get(PROXY_STARTUP_TIMEOUT),
                            get(PROXY_IDLE_TIMEOUT))
                    .withBackendConnectTimeout(get(PROXY_BACKEND_CONNECT_TIMEOUT))
                    .withMaxStartupPacketSize(get(PROXY_MAX_STARTUP_PACKET_SIZE))
                    .withIoThreads(get(PROXY_IO_THREADS))
                    .withBackendPool(get(PROXY_BACKEND_IDLE_TIMEOUT), get(PROXY_MAX_IDLE_BACKENDS_PER_DATABASE));
            if (proxyCertificateFile().isPresent()) {
                proxy = proxy.withCertificate(proxyCertificateFile().get(), proxyPrivateKeyFile().orElseThrow());
            }
            return proxy;
        });
    }

    /** The SQL-over-HTTP broker's limits and pool settings ({@code broker.*}). */
    public BrokerConfig brokerConfig() {
        return component("broker", () -> BrokerConfig.defaults()
                .withMaxRows(get(BROKER_MAX_ROWS))
                .withMaxRequestBytes(get(BROKER_MAX_REQUEST_BYTES))
                .withMaxResponseBytes(get(BROKER_MAX_RESPONSE_BYTES))
                .withStatementTimeout(get(BROKER_STATEMENT_TIMEOUT))
                .withPoolSizePerDatabase(get(BROKER_POOL_SIZE_PER_DATABASE))
                .withIdleConnectionTimeout(get(BROKER_IDLE_CONNECTION_TIMEOUT))
                .withConnectTimeout(get(BROKER_CONNECT_TIMEOUT))
                .withPoolWaitTimeout(get(BROKER_POOL_WAIT_TIMEOUT))
                .withConcurrentRequests(get(BROKER_MAX_CONCURRENT_REQUESTS),
                        get(BROKER_MAX_CONCURRENT_REQUESTS_PER_DATABASE))
                .withWebSocketSessions(get(BROKER_MAX_WEBSOCKET_SESSIONS),
                        get(BROKER_MAX_WEBSOCKET_SESSIONS_PER_DATABASE))
                .withLogin(get(BROKER_LOGIN_TIMEOUT), Math.toIntExact(get(BROKER_MAX_LOGIN_MESSAGE_BYTES)))
                .withLoginsPerAddress(get(BROKER_MAX_LOGINS_PER_ADDRESS)));
    }

    /** The vm driver's configuration ({@code vm.*}); instances under {@code <data-dir>/vm} unless set. */
    public io.palisade.vmm.VmDriverConfig vmDriverConfig(io.palisade.host.ServiceUser user,
            io.palisade.host.Cgroups cgroups) {
        return component("vm", () -> io.palisade.vmm.VmDriverConfig.defaults(
                        find(VM_INSTANCES_DIR).orElse(dataDir().resolve("vm")), vmImageDir(), user, cgroups)
                .withAccelerator(io.palisade.vmm.VmDriverConfig.AcceleratorMode.parse(vmAccelerator()))
                .withNetworkPool(vmNetworkPool())
                .withBootTimeout(vmBootTimeout())
                .withRestoreTimeout(vmRestoreTimeout())
                .withBootRetries(get(VM_BOOT_RETRIES))
                .withStopTimeout(get(VM_STOP_TIMEOUT))
                .withHostTscKhz(get(VM_HOST_TSC_KHZ))
                .withQemuBinary(get(VM_QEMU_BINARY)));
    }

    /**
     * Where the vm template snapshots are kept: {@code vm.templates-dir}, else beside the guest image (with the default
     * image directory {@code .cache/guest/current}: {@code .cache/guest/templates}), so a server with a new data
     * directory clones the template an earlier one built.
     */
    public Path vmTemplatesDir() {
        return find(VM_TEMPLATES_DIR).map(p -> p.toAbsolutePath().normalize())
                .orElseGet(() -> vmImageDir().resolveSibling("templates"));
    }

    public Path vmImageDir() {
        return get(VM_IMAGE_DIR).toAbsolutePath().normalize();
    }

    public String vmAccelerator() {
        return get(VM_ACCELERATOR);
    }

    public String vmNetworkPool() {
        return get(VM_NETWORK_POOL);
    }

    public Optional<Duration> vmSuspendAfter() {
        return get(VM_SUSPEND_AFTER);
    }

    public Duration vmRestoreTimeout() {
        return get(VM_RESTORE_TIMEOUT);
    }

    public Duration vmBootTimeout() {
        return get(VM_BOOT_TIMEOUT);
    }

    public boolean vmEnabled() {
        return get(VM_ENABLED);
    }

    public boolean vmPrepareTemplate() {
        return get(VM_PREPARE_TEMPLATE);
    }

    public boolean backupEnabled() {
        return get(BACKUP_ENABLED);
    }

    /** The backup settings ({@code backup.*}). */
    public BackupConfig backupConfig() {
        return component("backup", () -> new BackupConfig(backupEnabled(), get(BACKUP_BASE_INTERVAL),
                get(BACKUP_RETENTION), get(BACKUP_MAX_RATE).orElse(0), get(BACKUP_FLUSH_INTERVAL),
                get(BACKUP_START_DELAY), dataDir().resolve("backup-staging")));
    }

    public String backupStorage() {
        return get(BACKUP_STORAGE);
    }

    public Path backupLocalDir() {
        return find(BACKUP_LOCAL_DIR).orElse(dataDir().resolve("backups"));
    }

    public S3Settings backupS3() {
        if (find(BACKUP_S3_BUCKET).isEmpty()) {
            throw PalisadeException.invalid("backup.storage=s3 needs backup.s3.bucket");
        }
        if (find(BACKUP_S3_ACCESS_KEY_ID).isEmpty() || find(BACKUP_S3_SECRET_ACCESS_KEY).isEmpty()) {
            throw PalisadeException.invalid(
                    "backup.storage=s3 needs backup.s3.access-key-id and backup.s3.secret-access-key");
        }
        Optional<URI> endpoint = find(BACKUP_S3_ENDPOINT).map(text -> {
            try {
                return new URI(text);
            } catch (java.net.URISyntaxException e) {
                throw PalisadeException.invalid("backup.s3.endpoint must be a valid URL (" + e.getReason()
                        + " at index " + e.getIndex() + "), got '" + Setting.masked(text) + "'");
            }
        });
        return component("S3", () -> new S3Settings(endpoint, get(BACKUP_S3_REGION),
                get(BACKUP_S3_BUCKET), get(BACKUP_S3_PREFIX), get(BACKUP_S3_ACCESS_KEY_ID),
                get(BACKUP_S3_SECRET_ACCESS_KEY), get(BACKUP_S3_PATH_STYLE)));
    }

    /** The shared servers behind the database and schema rungs. */
    public io.palisade.agent.shared.SharedServerConfig sharedServers(Path serversDir, Path cacheDir,
            io.palisade.host.ServiceUser user, io.palisade.host.Cgroups cgroups) {
        return component("shared", () -> new io.palisade.agent.shared.SharedServerConfig(serversDir, cacheDir, user,
                cgroups, startTimeout(), get(SHARED_TENANTS_PER_SERVER), get(SHARED_SERVER_CPU),
                get(SHARED_SERVER_MEMORY_MB), get(SHARED_SERVER_DISK_MB), get(SHARED_MAX_CONNECTIONS),
                Duration.ofSeconds(1), sharedStatementTimeout(), sharedIdleInTransactionTimeout()));
    }

    /** The statement_timeout every new shared-rung tenant gets instead of its plan's, if set. */
    public Optional<Duration> sharedStatementTimeout() {
        return find(SHARED_STATEMENT_TIMEOUT);
    }

    /** The idle_in_transaction_session_timeout every new shared-rung tenant gets instead of its plan's, if set. */
    public Optional<Duration> sharedIdleInTransactionTimeout() {
        return find(SHARED_IDLE_IN_TRANSACTION_TIMEOUT);
    }

    /** Builds a component's configuration; its own checks fail start as a configuration error. */
    private static <T> T component(String what, Supplier<T> build) {
        try {
            return build.get();
        } catch (IllegalArgumentException e) {
            throw PalisadeException.invalid("invalid " + what + " settings: " + e.getMessage());
        }
    }

    /** The settings as written (defaults included), for logs: secrets masked. */
    @Override
    public String toString() {
        Map<String, String> shown = new TreeMap<>(text);
        ConfigKeys.ALL.stream().filter(Setting::secret)
                .forEach(key -> shown.computeIfPresent(key.name(), (name, value) -> "***"));
        return shown.toString();
    }
}
