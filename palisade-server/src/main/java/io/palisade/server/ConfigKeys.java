package io.palisade.server;

import static io.palisade.server.SettingType.bool;
import static io.palisade.server.SettingType.dataSize;
import static io.palisade.server.SettingType.duration;
import static io.palisade.server.SettingType.integer;
import static io.palisade.server.SettingType.longInteger;
import static io.palisade.server.SettingType.matching;
import static io.palisade.server.SettingType.nonEmpty;
import static io.palisade.server.SettingType.oneOf;
import static io.palisade.server.SettingType.orWord;
import static io.palisade.server.SettingType.path;
import static io.palisade.server.SettingType.positiveDuration;

import io.palisade.spi.Plan;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Every configuration key of {@code palisade serve}, each declared once, in the order help and the README show them.
 * Immutable after class initialisation, safe to share between threads.
 */
public final class ConfigKeys {
    private static final List<Setting<?>> DECLARED = new ArrayList<>();
    private static final int MAX = Integer.MAX_VALUE;
    private static final long GIB = 1024L * 1024 * 1024;
    private static final Duration FOREVER = Duration.ofDays(365_000);
    private static final String DNS_NAME = "[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*";

    public static final Setting<Path> SERVER_DATA_DIR = add(Setting.of("server.data-dir", path(), ".palisade/data",
            "Directory for all state: store, instances, secrets, TLS (relative to the working directory; "
                    + "bin/palisade passes <repo>/.palisade/data)"));
    public static final Setting<String> SERVER_HOST_ID = add(Setting.optional("server.host-id", nonEmpty(),
            "the machine's hostname", "This host's id; every database is pinned to one and shows it as pinned_host"));

    public static final Setting<String> API_HOST = add(Setting.of("api.host", nonEmpty(), "127.0.0.1",
            "REST API, broker and metrics bind address (plain HTTP unless api.tls.enabled)"));
    public static final Setting<Integer> API_PORT = add(Setting.of("api.port", integer(0, 65535), "8080",
            "REST API, broker and metrics port (0 = any free port)"));
    public static final Setting<Boolean> API_TLS_ENABLED = add(Setting.of("api.tls.enabled", bool(), "false",
            "Serve the REST API, broker and metrics over HTTPS (default certificate: the proxy's, signed by the "
                    + "generated CA; it names localhost and 127.0.0.1)"));
    public static final Setting<Path> API_TLS_CERTIFICATE_FILE = add(Setting.optional("api.tls.certificate-file",
            path(), "the proxy's generated certificate",
            "Operator certificate (PEM) for the API when api.tls.enabled"));
    public static final Setting<Path> API_TLS_PRIVATE_KEY_FILE = add(Setting.optional("api.tls.private-key-file",
            path(), "", "PKCS#8 private key (PEM) for api.tls.certificate-file").asSecret());
    public static final Setting<Duration> API_CREATE_WAIT = add(Setting.of("api.create-wait", positiveDuration(),
            "120s", "How long POST /v1/databases blocks before answering 202 provisioning"));
    public static final Setting<String> API_PUBLIC_URL = add(Setting.optional("api.public-url",
            matching("URL", "https?://.+", "an http:// or https:// URL"), "http://<api.host>:<port>",
            "Base URL clients use for the API and broker (the base of broker_url)"));

    public static final Setting<String> METRICS_TOKEN = add(Setting.optional("metrics.token",
            SettingType.minLength(16), "", "Bearer token for GET /metrics with per-database series (the admin API "
                    + "key works too; other accounts' keys see aggregate series only)").asSecret());

    public static final Setting<Integer> QUOTA_DATABASES = add(Setting.of("quota.databases", integer(0, MAX), "100",
            "Databases one account may hold"));
    public static final Setting<Integer> QUOTA_CPU_PER_DATABASE = add(Setting.of("quota.cpu-per-database",
            integer(1, MAX), "8", "vCPU one database may have"));
    public static final Setting<Integer> QUOTA_MEMORY_MB_PER_DATABASE = add(Setting.of("quota.memory-mb-per-database",
            integer(Plan.MIN_MEMORY_MB, MAX), "16384", "Memory (MB) one database may have"));
    public static final Setting<Integer> QUOTA_DISK_MB_PER_DATABASE = add(Setting.of("quota.disk-mb-per-database",
            integer(64, MAX), "65536", "Disk (MB) one database's plan may have"));
    public static final Setting<Integer> QUOTA_CPU_TOTAL = add(Setting.of("quota.cpu-total", integer(1, MAX), "128",
            "vCPU all of one account's databases may have together"));
    public static final Setting<Integer> QUOTA_MEMORY_MB_TOTAL = add(Setting.of("quota.memory-mb-total",
            integer(Plan.MIN_MEMORY_MB, MAX), "262144",
            "Memory (MB) all of one account's databases may have together"));
    public static final Setting<Long> QUOTA_DISK_MB_TOTAL = add(Setting.of("quota.disk-mb-total",
            longInteger(64, Long.MAX_VALUE), "1048576", "Disk (MB) all of one account's databases may have together"));

    public static final Setting<String> STORE_URL = add(Setting.optional("store.url",
            matching("JDBC URL", "jdbc:postgresql:.+", "a jdbc:postgresql: URL"), "embedded",
            "JDBC URL of an external PostgreSQL for metadata (default: an embedded one under the data directory)"));
    public static final Setting<String> STORE_USERNAME = add(Setting.optional("store.username", nonEmpty(), "",
            "User for store.url"));
    public static final Setting<String> STORE_PASSWORD = add(Setting.optional("store.password", SettingType.text(), "",
            "Password for store.url").asSecret());

    public static final Setting<Duration> AGENT_START_TIMEOUT = add(Setting.of("agent.start-timeout",
            positiveDuration(), "120s", "Bound on a tenant server start"));
    public static final Setting<Duration> AGENT_RESTORE_TIMEOUT = add(Setting.of("agent.restore-timeout",
            positiveDuration(), "1h", "Bound on the first start of a restored process database (WAL replay included)"));
    public static final Setting<Duration> AGENT_RECONCILE_INTERVAL = add(Setting.of("agent.reconcile-interval",
            positiveDuration(), "5s", "How often the agent restarts dead instances, removes orphans, reaps expired "
                    + "ephemeral databases and suspends idle ones"));
    public static final Setting<Boolean> AGENT_STOP_INSTANCES_ON_EXIT = add(Setting.of("agent.stop-instances-on-exit",
            bool(), "true", "Stop every instance when palisade stops gracefully (false: vm databases, process-rung "
                    + "servers and the shared servers keep running, and the next start takes them over)"));
    public static final Setting<String> AGENT_CGROUP_PARENT = add(Setting.of("agent.cgroup-parent", nonEmpty(),
            "palisade", "Parent cgroup name for per-instance caps"));
    public static final Setting<String> AGENT_SERVICE_USER = add(Setting.of("agent.service-user", nonEmpty(),
            "palisade", "Unprivileged OS user for templates; tenants get <this>-<id> users (uids 200000-299999), the "
                    + "store <this>-store (as root)"));

    public static final Setting<Boolean> PROXY_ENABLED = add(Setting.of("proxy.enabled", bool(), "true",
            "Serve every database on one TLS port routed by SNI (false: URLs point at instances)"));
    public static final Setting<String> PROXY_BIND_HOST = add(Setting.of("proxy.bind-host", nonEmpty(), "127.0.0.1",
            "Address the PostgreSQL proxy listens on"));
    public static final Setting<Integer> PROXY_PORT = add(Setting.of("proxy.port", integer(0, 65535), "5432",
            "Port of the PostgreSQL proxy (0 = any free port)"));
    public static final Setting<Integer> PROXY_PUBLIC_PORT = add(Setting.optional("proxy.public-port",
            integer(1, 65535), "proxy.port", "Port put in URLs if clients use another (e.g. behind a load balancer)"));
    public static final Setting<String> PROXY_DOMAIN = add(Setting.of("proxy.domain",
            matching("DNS name", DNS_NAME, "a lowercase DNS name such as db.localhost"), "db.localhost",
            "Databases are reached at <id>.<domain>"));
    public static final Setting<String> PROXY_HOSTADDR = add(Setting.of("proxy.hostaddr", nonEmpty(), "auto",
            "Address put in URLs as libpq hostaddr= (auto: 127.0.0.1 for *.localhost domains, else none; none; "
                    + "or an address)"));
    public static final Setting<Path> PROXY_TLS_CERTIFICATE_FILE = add(Setting.optional("proxy.tls.certificate-file",
            path(), "a generated local CA", "Operator certificate (PEM) for *.<domain>"));
    public static final Setting<Path> PROXY_TLS_PRIVATE_KEY_FILE = add(Setting.optional("proxy.tls.private-key-file",
            path(), "", "Private key (PEM) for proxy.tls.certificate-file").asSecret());
    public static final Setting<Integer> PROXY_MAX_CONNECTIONS_PER_DATABASE = add(Setting.of(
            "proxy.max-connections-per-database", integer(1, MAX), "100",
            "Client connections allowed per database (53300 beyond)"));
    public static final Setting<Integer> PROXY_MAX_CLIENT_CONNECTIONS = add(Setting.of("proxy.max-client-connections",
            integer(1, MAX), "10000", "Authenticated client sessions allowed in total, over all databases"));
    public static final Setting<Integer> PROXY_MAX_UNAUTHENTICATED_CONNECTIONS = add(Setting.of(
            "proxy.max-unauthenticated-connections", integer(1, MAX), "1000",
            "Proxy connections still authenticating, in total (closed beyond)"));
    public static final Setting<Integer> PROXY_MAX_UNAUTHENTICATED_PER_SOURCE = add(Setting.of(
            "proxy.max-unauthenticated-per-source", integer(1, MAX), "64",
            "Proxy connections still authenticating from one address (IPv6: one /64)"));
    public static final Setting<Duration> PROXY_AUTHENTICATION_TIMEOUT = add(Setting.of(
            "proxy.authentication-timeout", positiveDuration(), "10s",
            "Time a proxy client has from connect to a proven login; then the socket closes"));
    public static final Setting<Duration> PROXY_TLS_HANDSHAKE_TIMEOUT = add(Setting.of("proxy.tls.handshake-timeout",
            positiveDuration(), "10s", "Time from connect until the proxy's TLS handshake is done"));
    public static final Setting<Duration> PROXY_STARTUP_TIMEOUT = add(Setting.of("proxy.startup-timeout",
            positiveDuration(), "60s", "Time from connect until a session is ready for queries (authentication and "
                    + "waking a suspended database included)"));
    public static final Setting<Duration> PROXY_IDLE_TIMEOUT = add(Setting.of("proxy.idle-timeout",
            duration(Duration.ZERO, FOREVER), "1h", "Relayed connections with no traffic either way for this long "
                    + "are closed (0s: never)"));
    public static final Setting<Duration> PROXY_BACKEND_CONNECT_TIMEOUT = add(Setting.of(
            "proxy.backend-connect-timeout", positiveDuration(), "10s", "TCP connect timeout from the proxy to a "
                    + "database instance"));
    public static final Setting<Integer> PROXY_MAX_STARTUP_PACKET_SIZE = add(Setting.of(
            "proxy.max-startup-packet-size", integer(64, 1 << 20), "10000",
            "Largest PostgreSQL StartupMessage the proxy accepts, in bytes"));
    public static final Setting<Integer> PROXY_IO_THREADS = add(Setting.of("proxy.io-threads", integer(0, 1024), "0",
            "Event-loop threads of the proxy (0: one per two cores, at least one)"));
    public static final Setting<Duration> PROXY_BACKEND_IDLE_TIMEOUT = add(Setting.of("proxy.backend-idle-timeout",
            duration(Duration.ZERO, Duration.ofHours(1)), "30s", "How long a backend connection whose client left "
                    + "cleanly waits, reset with DISCARD ALL, for the next client of the same login (0s: no reuse)"));
    public static final Setting<Integer> PROXY_MAX_IDLE_BACKENDS_PER_DATABASE = add(Setting.of(
            "proxy.max-idle-backends-per-database", integer(0, MAX), "64",
            "Backend connections kept for reuse per database (0: no reuse)"));

    public static final Setting<Integer> BROKER_MAX_ROWS = add(Setting.of("broker.max-rows", integer(1, MAX), "10000",
            "Rows kept per statement by the SQL-over-HTTP broker: /sql fails with 507, PandaStack routes cut the rows "
                    + "and say truncated"));
    public static final Setting<Long> BROKER_MAX_REQUEST_BYTES = add(Setting.of("broker.max-request-bytes",
            dataSize(1024, GIB), "10MiB", "Largest broker request body, and largest WebSocket message once logged "
                    + "in (413 beyond)"));
    public static final Setting<Long> BROKER_MAX_RESPONSE_BYTES = add(Setting.of("broker.max-response-bytes",
            dataSize(1024, GIB), "10MiB", "Largest broker response body; the statement is cancelled as soon as the "
                    + "rows collected exceed it (507)"));
    public static final Setting<Duration> BROKER_STATEMENT_TIMEOUT = add(Setting.of("broker.statement-timeout",
            duration(Duration.ofMillis(1), Duration.ofDays(24)), "30s",
            "statement_timeout of broker connections; the broker also cancels a statement itself shortly after it"));
    public static final Setting<Integer> BROKER_POOL_SIZE_PER_DATABASE = add(Setting.of(
            "broker.pool-size-per-database", integer(1, MAX), "20",
            "Backend connections the broker keeps per database, over all users"));
    public static final Setting<Duration> BROKER_IDLE_CONNECTION_TIMEOUT = add(Setting.of(
            "broker.idle-connection-timeout", positiveDuration(), "5m",
            "An idle pooled broker connection is closed after this long"));
    public static final Setting<Duration> BROKER_CONNECT_TIMEOUT = add(Setting.of("broker.connect-timeout",
            positiveDuration(), "30s", "Bound on resolving (and waking), connecting and logging in to a backend"));
    public static final Setting<Duration> BROKER_POOL_WAIT_TIMEOUT = add(Setting.of("broker.pool-wait-timeout",
            duration(Duration.ZERO, FOREVER), "10s", "How long a broker request waits for a pooled connection when "
                    + "the pool is full (then /sql 500, PandaStack 429)"));
    public static final Setting<Integer> BROKER_MAX_CONCURRENT_REQUESTS = add(Setting.of(
            "broker.max-concurrent-requests", integer(1, MAX), "256",
            "Broker HTTP requests in flight over all databases, counted on arrival (429 beyond)"));
    public static final Setting<Integer> BROKER_MAX_CONCURRENT_REQUESTS_PER_DATABASE = add(Setting.of(
            "broker.max-concurrent-requests-per-database", integer(1, MAX), "64",
            "Broker HTTP requests in flight for one database, counted after authentication (429 beyond)"));
    public static final Setting<Integer> BROKER_MAX_WEBSOCKET_SESSIONS = add(Setting.of(
            "broker.max-websocket-sessions", integer(1, MAX), "2000",
            "/v2 sessions over all databases, logged in or not (closed with 1013 beyond)"));
    public static final Setting<Integer> BROKER_MAX_WEBSOCKET_SESSIONS_PER_DATABASE = add(Setting.of(
            "broker.max-websocket-sessions-per-database", integer(1, MAX), "100",
            "Logged-in /v2 sessions of one database (FATAL 53300 beyond)"));
    public static final Setting<Duration> BROKER_LOGIN_TIMEOUT = add(Setting.of("broker.login-timeout",
            positiveDuration(), "10s", "A /v2 session that has not logged in by then is closed (also its idle "
                    + "timeout until then)"));
    public static final Setting<Long> BROKER_MAX_LOGIN_MESSAGE_BYTES = add(Setting.of(
            "broker.max-login-message-bytes", dataSize(1024, 16L * 1024 * 1024), "64KiB",
            "Largest /v2 message, and most bytes buffered, before the login (closed with 1009 beyond)"));
    public static final Setting<Integer> BROKER_MAX_LOGINS_PER_ADDRESS = add(Setting.of(
            "broker.max-logins-per-address", integer(1, MAX), "32",
            "/v2 sessions from one client address not logged in yet (closed with 1013 beyond)"));

    public static final Setting<Boolean> VM_ENABLED = add(Setting.of("vm.enabled", bool(), "true",
            "Run the vm rung on this host (false: no QEMU, no network namespace touched; refused while this host "
                    + "has vm databases)"));
    public static final Setting<Path> VM_INSTANCES_DIR = add(Setting.optional("vm.instances-dir", path(),
            "<data-dir>/vm", "One directory per VM (disk, memory file, sockets, logs); on disk, not tmpfs"));
    public static final Setting<Path> VM_IMAGE_DIR = add(Setting.of("vm.image-dir", path(), ".cache/guest/current",
            "Guest image built by guest/build.sh (bin/palisade passes <repo>/.cache/guest/current)"));
    public static final Setting<Path> VM_TEMPLATES_DIR = add(Setting.optional("vm.templates-dir", path(),
            "<vm.image-dir>/../templates", "Template snapshots the creates clone, shared by every palisade on the host "
                    + "that names this directory (builds locked across processes); on disk, not tmpfs"));
    public static final Setting<String> VM_ACCELERATOR = add(Setting.of("vm.accelerator", oneOf("auto", "kvm", "tcg"),
            "auto", "auto: KVM where the CPU has vmx/svm, else TCG; or force kvm or tcg"));
    public static final Setting<String> VM_NETWORK_POOL = add(Setting.of("vm.network-pool",
            matching("IPv4 CIDR", "\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}", "an IPv4 CIDR block such as 10.213.0.0/16"),
            "10.213.0.0/16", "Per-host pool of /30 links to the VMs' network namespaces"));
    public static final Setting<Optional<Duration>> VM_SUSPEND_AFTER = add(Setting.of("vm.suspend-after",
            orWord("never", positiveDuration()), "300s",
            "Default idle period before a vm database is suspended to disk (never: not at all)"));
    public static final Setting<Duration> VM_BOOT_TIMEOUT = add(Setting.of("vm.boot-timeout",
            duration(Duration.ofSeconds(5), FOREVER), "90s", "Bound on one guest boot before the watchdog retries it"));
    public static final Setting<Integer> VM_BOOT_RETRIES = add(Setting.of("vm.boot-retries", integer(0, 10), "2",
            "How often the boot watchdog kills and restarts a guest that hangs"));
    public static final Setting<Duration> VM_STOP_TIMEOUT = add(Setting.of("vm.stop-timeout",
            duration(Duration.ZERO, FOREVER), "20s",
            "How long a clean guest shutdown may take before QEMU is told to quit (then SIGKILL)"));
    public static final Setting<Duration> VM_RESTORE_TIMEOUT = add(Setting.of("vm.restore-timeout",
            duration(Duration.ofSeconds(5), FOREVER), "1h",
            "Bound on the first boot of a restored vm database (WAL replay included)"));
    public static final Setting<Long> VM_HOST_TSC_KHZ = add(Setting.of("vm.host-tsc-khz",
            longInteger(-1, Long.MAX_VALUE), "0", "TSC rate in kHz passed to TCG guests (tsc_early_khz; 0: cpu MHz "
                    + "from /proc/cpuinfo; -1: none, for diagnostics only)"));
    public static final Setting<Path> VM_QEMU_BINARY = add(Setting.of("vm.qemu-binary", path(),
            "/usr/bin/qemu-system-x86_64", "The QEMU system emulator"));
    public static final Setting<Boolean> VM_PREPARE_TEMPLATE = add(Setting.of("vm.prepare-template", bool(), "true",
            "Build the default plan's template snapshot in the background at start and whenever the guest image "
                    + "changes, and before the start in bin/palisade serve (palisade prepare-template); false: the "
                    + "first create builds it"));

    public static final Setting<Integer> SHARED_TENANTS_PER_SERVER = add(Setting.of("shared.tenants-per-server",
            integer(1, MAX), "500",
            "database/schema rungs: tenants one shared server takes before palisade starts another"));
    public static final Setting<Integer> SHARED_SERVER_CPU = add(Setting.of("shared.server-cpu", integer(1, 1024),
            "2", "database/schema rungs: CPU cap of one shared server"));
    public static final Setting<Integer> SHARED_SERVER_MEMORY_MB = add(Setting.of("shared.server-memory-mb",
            integer(256, MAX), "2048", "database/schema rungs: memory cap of one shared server (placement stops at "
                    + "90 % of it)"));
    public static final Setting<Integer> SHARED_SERVER_DISK_MB = add(Setting.of("shared.server-disk-mb",
            integer(1024, MAX), "65536",
            "database/schema rungs: placement stops once a shared server's data directory holds this much"));
    public static final Setting<Integer> SHARED_MAX_CONNECTIONS = add(Setting.of("shared.max-connections",
            integer(20, 10_000), "300", "database/schema rungs: max_connections of one shared server (each tenant's "
                    + "own limit is at most a quarter of it)"));
    public static final Setting<Duration> SHARED_STATEMENT_TIMEOUT = add(Setting.optional("shared.statement-timeout",
            duration(Duration.ofSeconds(1), FOREVER), "from the plan (nano: 30s)",
            "database/schema rungs: statement_timeout of new tenants instead of the plan's"));
    public static final Setting<Duration> SHARED_IDLE_IN_TRANSACTION_TIMEOUT = add(Setting.optional(
            "shared.idle-in-transaction-timeout", duration(Duration.ofSeconds(1), FOREVER), "from the plan (60s)",
            "database/schema rungs: idle_in_transaction_session_timeout of new tenants instead of the plan's"));

    public static final Setting<Boolean> BACKUP_ENABLED = add(Setting.of("backup.enabled", bool(), "true",
            "Continuous WAL archiving and base backups of every persistent database"));
    public static final Setting<String> BACKUP_STORAGE = add(Setting.of("backup.storage", oneOf("local", "s3"),
            "local", "Where archives go: local (a directory) or s3 (an S3-compatible object store)"));
    public static final Setting<Path> BACKUP_LOCAL_DIR = add(Setting.optional("backup.local-dir", path(),
            "<data-dir>/backups", "Archive directory for backup.storage=local"));
    public static final Setting<String> BACKUP_S3_ENDPOINT = add(Setting.optional("backup.s3.endpoint",
            matching("URL", "https?://.+", "an http:// or https:// URL"), "AWS", "S3 endpoint URL (omit for AWS)"));
    public static final Setting<String> BACKUP_S3_REGION = add(Setting.of("backup.s3.region", nonEmpty(), "us-east-1",
            "S3 region"));
    public static final Setting<String> BACKUP_S3_BUCKET = add(Setting.optional("backup.s3.bucket", nonEmpty(), "",
            "S3 bucket (must exist; required for backup.storage=s3)"));
    public static final Setting<String> BACKUP_S3_PREFIX = add(Setting.of("backup.s3.prefix", SettingType.text(),
            "palisade/", "Key prefix inside the bucket"));
    public static final Setting<String> BACKUP_S3_ACCESS_KEY_ID = add(Setting.optional("backup.s3.access-key-id",
            nonEmpty(), "", "S3 access key id"));
    public static final Setting<String> BACKUP_S3_SECRET_ACCESS_KEY = add(Setting.optional(
            "backup.s3.secret-access-key", nonEmpty(), "", "S3 secret access key").asSecret());
    public static final Setting<Boolean> BACKUP_S3_PATH_STYLE = add(Setting.of("backup.s3.path-style", bool(), "true",
            "Path-style S3 URLs (true for most S3-compatible servers)"));
    public static final Setting<Duration> BACKUP_BASE_INTERVAL = add(Setting.of("backup.base-interval",
            duration(Duration.ofSeconds(1), FOREVER), "24h", "Default interval between scheduled base backups of a "
                    + "database (per database: base_backup_interval_seconds)"));
    public static final Setting<Duration> BACKUP_RETENTION = add(Setting.of("backup.retention",
            duration(Duration.ofSeconds(1), FOREVER), "7d",
            "Default restorable window kept per database (per database: retention_seconds)"));
    public static final Setting<Optional<Integer>> BACKUP_MAX_RATE = add(Setting.of("backup.max-rate",
            orWord("0", integer(32, 1_048_576)), "32768", "Base backup read limit in kB/s per database (0 = "
                    + "unlimited); one base backup at a time per host"));
    public static final Setting<Duration> BACKUP_FLUSH_INTERVAL = add(Setting.of("backup.flush-interval",
            positiveDuration(), "500ms",
            "Longest time streamed WAL waits before it is written to the archive (async durability)"));
    public static final Setting<Duration> BACKUP_START_DELAY = add(Setting.of("backup.start-delay",
            duration(Duration.ZERO, Duration.ofMinutes(10)), "2s", "How long after a database starts or wakes its "
                    + "async durability setting is written and a due base backup starts, and its archiver connects "
                    + "(async, archive that holds WAL), so that its first client is served first"));

    /** Every key, in declaration order. */
    public static final List<Setting<?>> ALL = List.copyOf(DECLARED);

    private ConfigKeys() {}

    private static <T> Setting<T> add(Setting<T> setting) {
        if (DECLARED.stream().anyMatch(s -> s.name().equals(setting.name()))) {
            throw new IllegalStateException("configuration key declared twice: " + setting.name());
        }
        DECLARED.add(setting);
        return setting;
    }
}
