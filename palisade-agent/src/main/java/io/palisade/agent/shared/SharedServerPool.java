package io.palisade.agent.shared;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.PostgresVersion;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The shared servers of one host, shared by the {@code database} and {@code schema} rungs: finds them again at start,
 * places new tenants by capacity (tenants per server, the server's memory and disk), restarts a server that crashed
 * (logging and counting how many tenants it took down and for how long), and cuts off tenant sessions that outlive
 * their plan's timeouts. Thread-safe.
 */
public final class SharedServerPool implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SharedServerPool.class);
    /** Sessions are cut off this long after their limit: the role default fires first in the normal case. */
    private static final Duration GRACE = Duration.ofSeconds(1);
    /** Spare databases each server keeps ready, so that a database-rung create renames one instead of copying. */
    static final int SPARE_DATABASES = 3;
    /**
     * A statement still running this long after its first cancel ignored it (PL/pgSQL can catch query_canceled, and a
     * session may turn its own statement_timeout off): its session is ended, which no SQL can catch.
     */
    private static final Duration CANCEL_IGNORED = Duration.ofSeconds(5);

    /** One crash of a shared server: when, how many tenants it affected, and how long until they were back. */
    public record Outage(String server, Instant at, int tenants, Duration downtime) {}

    private final SharedServerConfig config;
    private final Map<String, SharedServer> servers = new ConcurrentHashMap<>();
    /** Tenant id → where it lives; rebuilt from the servers' registries at start. */
    private final Map<String, Tenant> tenants = new ConcurrentHashMap<>();
    private final java.util.Set<String> stopped = ConcurrentHashMap.newKeySet();
    static final String STOPPED_SUFFIX = ".stopped";
    private final List<Outage> outages = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final AtomicLong sessionsCutOff = new AtomicLong();
    private final ScheduledExecutorService monitor;

    public SharedServerPool(SharedServerConfig config) {
        this.config = requireNonNull(config, "config is null");
        try {
            Files.createDirectories(config.serversDir());
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot create " + config.serversDir(), e);
        }
        config.user().checkCanTraverse(config.serversDir());
        try (Stream<Path> dirs = Files.list(config.serversDir())) {
            dirs.filter(Files::isDirectory).map(p -> p.getFileName().toString()).filter(n -> n.matches("pg\\d+-\\d+"))
                    .forEach(n -> servers.put(n, new SharedServer(n, versionOf(n), config)));
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot list " + config.serversDir(), e);
        }
        servers.values().forEach(s -> s.tenants().forEach(t -> {
            tenants.put(key(t), t);
            if (Files.exists(s.tenantFile(key(t) + STOPPED_SUFFIX))) {
                stopped.add(key(t));
            }
        }));
        this.monitor = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("shared-monitor").daemon()
                .factory());
        long every = config.monitorInterval().toMillis();
        monitor.scheduleWithFixedDelay(this::check, every, every, TimeUnit.MILLISECONDS);
    }

    private static PostgresVersion versionOf(String serverName) {
        return PostgresVersion.fromMajor(serverName.substring(2, serverName.indexOf('-')));
    }

    public SharedServerConfig config() {
        return config;
    }

    /**
     * A tenant's key in the registry, and its record's file name: the id for the database rung, {@code <id>@schema} for
     * the schema rung, so that one database can have a tenant on each while it moves between them.
     */
    static String key(String id, TenantLayout layout) {
        return layout == TenantLayout.SCHEMA ? id + "@schema" : id;
    }

    private static String key(Tenant tenant) {
        return key(tenant.id(), tenant.layout());
    }

    Optional<Tenant> tenant(String id, TenantLayout layout) {
        return Optional.ofNullable(tenants.get(key(id, layout)));
    }

    /** The tenant with this id on either shared rung (the database rung's if it has one on both, mid-move). */
    Optional<Tenant> tenant(String id) {
        return tenant(id, TenantLayout.DATABASE).or(() -> tenant(id, TenantLayout.SCHEMA));
    }

    List<Tenant> tenants(TenantLayout layout) {
        return tenants.values().stream().filter(t -> t.layout() == layout).toList();
    }

    SharedServer server(Tenant tenant) {
        SharedServer server = servers.get(tenant.server());
        if (server == null) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "shared server " + tenant.server() + " of "
                    + tenant.id()
                    + " is missing from this host");
        }
        return server;
    }

    /** Records a tenant on its server before any of its objects exist. */
    void record(Tenant tenant) {
        tenant.write(server(tenant).tenantFile(key(tenant)));
        tenants.put(key(tenant), tenant);
    }

    /**
     * Records whether a tenant is stopped (its role may not log in), as a marker file beside its record, so that
     * {@code isRunning} needs no query.
     */
    void markStopped(Tenant tenant, boolean stopped) {
        Path marker = server(tenant).tenantFile(key(tenant) + STOPPED_SUFFIX);
        try {
            if (stopped) {
                Files.writeString(marker, "");
                this.stopped.add(key(tenant));
            } else {
                Files.deleteIfExists(marker);
                this.stopped.remove(key(tenant));
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot record the state of " + tenant.id(), e);
        }
    }

    boolean isStopped(Tenant tenant) {
        return stopped.contains(key(tenant));
    }

    /** Forgets a tenant once none of its objects exist. */
    void forget(Tenant tenant) {
        try {
            Files.deleteIfExists(server(tenant).tenantFile(key(tenant) + STOPPED_SUFFIX));
            Files.deleteIfExists(server(tenant).tenantFile(key(tenant)));
            stopped.remove(key(tenant));
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot remove the record of " + tenant.id(), e);
        }
        tenants.remove(key(tenant));
    }

    /**
     * The server a new tenant of {@code version} goes to: the fullest running one with room (tenants, memory below 90 %
     * of its cap, data directory below its disk budget), else a new one.
     */
    synchronized SharedServer place(PostgresVersion version) {
        List<SharedServer> candidates = new ArrayList<>(servers.values().stream()
                .filter(s -> s.version().equals(version)).toList());
        candidates.sort((a, b) -> Long.compare(count(b), count(a)));
        for (SharedServer candidate : candidates) {
            if (hasRoom(candidate)) {
                ensureRunning(candidate);
                return candidate;
            }
        }
        int next = 1 + servers.keySet().stream().filter(n -> n.startsWith("pg" + version.major() + "-"))
                .mapToInt(n -> Integer.parseInt(n.substring(n.indexOf('-') + 1))).max().orElse(0);
        SharedServer created = new SharedServer("pg" + version.major() + "-" + next, version, config);
        ensureRunning(created);
        servers.put(created.name(), created);
        return created;
    }

    private long count(SharedServer server) {
        return tenants.values().stream().filter(t -> t.server().equals(server.name())).count();
    }

    private boolean hasRoom(SharedServer server) {
        if (count(server) >= config.tenantsPerServer()) {
            return false;
        }
        long memoryCap = (long) config.serverMemoryMb() * 1024 * 1024;
        // not the whole charge: the cache of the files a server wrote (~8 MB per database tenant) fills its cgroup up
        // to the cap, and counting it made every server look full after ~200 database tenants
        long memory = server.cgroup().map(Cgroups.Group::workingSetBytes).orElse(-1L);
        if (memory > memoryCap * 9 / 10) {
            return false;
        }
        long disk = server.diskBytes();
        return disk < (long) config.serverDiskMb() * 1024 * 1024;
    }

    /** Every crash seen since start. */
    public List<Outage> outages() {
        return List.copyOf(outages);
    }

    /** Tenant sessions cut off for outliving their plan's timeouts since start. */
    public long sessionsCutOff() {
        return sessionsCutOff.get();
    }

    /** Shared servers on this host, and how many of them run. */
    public int serverCount() {
        return servers.size();
    }

    public int runningServerCount() {
        return (int) servers.values().stream().filter(SharedServer::isAlive).count();
    }

    /** Kills a server's postmaster with SIGKILL, as a crash would (tests and the blast-radius benchmark). */
    public void crash(String serverName) {
        SharedServer server = servers.get(serverName);
        if (server != null && server.isAlive()) {
            io.palisade.host.Processes.signal(server.pid(), "KILL");
        }
    }

    /**
     * Runs a read-only query as the superuser on one shared server and returns the first column of every row, as text
     * ({@code null} for SQL NULL). For tests and operators' checks, e.g. that a deleted tenant left nothing behind.
     */
    public List<String> query(String serverName, String database, String sql) {
        SharedServer server = servers.get(serverName);
        if (server == null) {
            throw new PalisadeException(ErrorCode.NOT_FOUND, "no shared server " + serverName + " on this host; it has "
                    + new java.util.TreeSet<>(servers.keySet()));
        }
        try (Connection c = server.connect(database)) {
            c.setReadOnly(true);
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
                List<String> values = new ArrayList<>();
                while (rs.next()) {
                    values.add(rs.getString(1));
                }
                return values;
            }
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "query on shared server " + serverName + " ("
                    + database + ") failed: " + e.getMessage(), e);
        }
    }

    /** The name of the server a tenant lives on. */
    public Optional<String> serverOf(String id) {
        return tenant(id).map(Tenant::server);
    }

    private void check() {
        for (SharedServer server : servers.values()) {
            try {
                if (server.crashed() && count(server) > 0) {
                    log.warn("shared server {} is down (crashed): restarting it; {} tenant(s) affected", server.name(),
                            count(server));
                    ensureRunning(server);
                } else if (server.isAlive()) {
                    enforceTimeouts(server);
                    server.capLog();
                    server.refillSpares(SPARE_DATABASES);
                }
            } catch (RuntimeException | SQLException e) {
                log.warn("shared server {}: {}", server.name(), e.getMessage());
            }
        }
    }

    /**
     * Starts a server that does not run. A server that crashed is restarted the same way whoever gets to it first (this
     * pool's monitor, a tenant's start from the reconciler, a placement), and the outage is recorded either way: how
     * many tenants it took down and for how long (from when the crash was first noticed, plus one monitor interval, by
     * which the monitor notices any crash: an upper bound).
     */
    void ensureRunning(SharedServer server) {
        int affected = (int) count(server);
        server.ensureRunning().ifPresent(noticed -> {
            Duration downtime = Duration.between(noticed, Instant.now()).plus(config.monitorInterval());
            outages.add(new Outage(server.name(), noticed, affected, downtime));
            log.warn("shared server {} is back after a crash, down for at most {} ms; blast radius: {} tenant(s)",
                    server.name(), downtime.toMillis(), affected);
        });
    }

    /** Cuts off tenant sessions that outlived their statement or idle-in-transaction limit (plus {@link #GRACE}). */
    private void enforceTimeouts(SharedServer server) {
        Map<String, Tenant> byRole = new java.util.HashMap<>();
        tenants.values().stream().filter(t -> t.server().equals(server.name())).forEach(t -> byRole.put(t.role(), t));
        if (byRole.isEmpty()) {
            return;
        }
        try {
            int cut = server.onMonitorConnection(c -> cutOff(server, c, byRole));
            sessionsCutOff.addAndGet(cut);
        } catch (SQLException | PalisadeException e) {
            log.debug("shared server {}: timeout check failed: {}", server.name(), e.getMessage());
        }
    }

    /**
     * One pass over the server's tenant sessions: cancels statements past their tenant's statement limit, ends sessions
     * that ignored the cancel or sat idle in a transaction past the limit, and ends the largest session of any tenant
     * whose sessions together hold more private memory than its plan (before the server's cgroup runs out, which would
     * restart every tenant's sessions). Returns how many sessions it cut off.
     */
    private static int cutOff(SharedServer server, Connection c, Map<String, Tenant> byRole) throws SQLException {
        try (Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("""
                        SELECT pid, usename, state,
                               (extract(epoch FROM clock_timestamp() - query_start) * 1000)::bigint,
                               (extract(epoch FROM clock_timestamp() - state_change) * 1000)::bigint
                        FROM pg_stat_activity
                        WHERE backend_type = 'client backend' AND usename LIKE 'tenant\\_%'""")) {
            List<String> cancel = new ArrayList<>();
            List<String> terminate = new ArrayList<>();
            Map<String, long[]> memory = new java.util.HashMap<>(); // role → {total, largest pid, largest bytes}
            while (rs.next()) {
                Tenant tenant = byRole.get(rs.getString(2));
                if (tenant == null) {
                    continue;
                }
                long pid = rs.getLong(1);
                String state = String.valueOf(rs.getString(3));
                if (state.equals("active")) {
                    long running = rs.getLong(4);
                    long limit = tenant.limits().statementTimeout().plus(GRACE).toMillis();
                    if (running > limit + CANCEL_IGNORED.toMillis()) {
                        terminate.add(Long.toString(pid));
                    } else if (running > limit) {
                        cancel.add(Long.toString(pid));
                    }
                } else if (state.startsWith("idle in transaction")
                        && rs.getLong(5) > tenant.limits().idleInTransactionTimeout().plus(GRACE).toMillis()) {
                    terminate.add(Long.toString(pid));
                }
                long bytes = io.palisade.host.Processes.anonymousBytes(pid);
                long[] use = memory.computeIfAbsent(tenant.role(), r -> new long[] {0, -1, -1});
                use[0] += Math.max(0, bytes);
                if (bytes > use[2]) {
                    use[1] = pid;
                    use[2] = bytes;
                }
            }
            memory.forEach((role, use) -> {
                long budget = byRole.get(role).limits().memoryBytes();
                if (use[0] > budget && use[1] > 0 && !terminate.contains(Long.toString(use[1]))) {
                    terminate.add(Long.toString(use[1]));
                    log.info("shared server {}: tenant {} holds {} MB of private memory (its plan allows {} MB); ending "
                            + "its largest session", server.name(), byRole.get(role).id(), use[0] >> 20, budget >> 20);
                }
            });
            if (!cancel.isEmpty()) {
                s.execute("SELECT pg_cancel_backend(pid) FROM unnest(ARRAY[" + String.join(",", cancel) + "]) pid");
                log.info("shared server {}: cancelled {} statement(s) that outlived their tenant's statement_timeout",
                        server.name(), cancel.size());
            }
            if (!terminate.isEmpty()) {
                s.execute("SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[" + String.join(",", terminate) + "]) pid");
                log.info("shared server {}: ended {} session(s) past their tenant's limits", server.name(),
                        terminate.size());
            }
            return cancel.size() + terminate.size();
        }
    }

    /** Stops the monitor and every shared server (their tenants stay recorded and come back at the next start). */
    @Override
    public void close() {
        monitor.shutdownNow();
        servers.values().forEach(SharedServer::stop);
    }

    /** Every shared server of this host. */
    List<SharedServer> serversForTests() {
        return List.copyOf(servers.values());
    }

    /**
     * Stops the monitor only: the servers keep serving their tenants and the next start takes each one over
     * ({@link io.palisade.host.PostgresServer#adopt}).
     */
    public void detach() {
        monitor.shutdownNow();
    }

    /** Removes servers that hold no tenant any more (tests; an operator's clean-up). */
    public void removeEmptyServers() {
        for (SharedServer server : List.copyOf(servers.values())) {
            if (count(server) == 0) {
                server.destroy();
                servers.remove(server.name());
            }
        }
    }
}
