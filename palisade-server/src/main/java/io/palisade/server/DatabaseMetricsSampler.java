package io.palisade.server;

import static java.util.Objects.requireNonNull;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.palisade.agent.AdminConnection;
import io.palisade.api.DatabaseService;
import io.palisade.backup.BackupService;
import io.palisade.spi.InstanceStats;
import io.palisade.spi.Rung;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.DatabaseState;
import io.palisade.store.MetadataStore;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.function.ToIntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * palisade's own per-database sampler, so charts work without Prometheus: once a step (10 s) it samples every database
 * of this host that is {@code running} and keeps the last hour and day in a {@link DatabaseHistory} per database.
 * Suspended and stopped databases are skipped, never resolved, so sampling never wakes one; a deleted database's
 * history is dropped on the next pass.
 *
 * <p>Where each series comes from: {@code cpu_percent}, {@code memory_bytes}, {@code storage_bytes} and, on the shared
 * rungs, {@code connections} from the driver's {@link InstanceStats} (as {@code GET /v1/databases/{id}/stats});
 * on a server of the tenant's own (process, vm) and on the database rung {@code connections} and the commits and
 * rollbacks behind {@code transactions_per_second} from {@code pg_stat_database}, over one management connection opened
 * and closed within the pass (5 s statement timeout; none on the schema rung, whose database is shared);
 * {@code proxy_bytes_per_second}, {@code proxy_connections} and {@code broker_requests_per_second} from the proxy's and
 * broker's per-database meters; {@code archive_lag_bytes} from the backup archiver. Rates are the difference to the
 * previous sample; a value the pass could not learn is {@code NaN} (null in the API), never 0. The latest connections,
 * transactions/s, CPU, memory and storage are also exported as {@code palisade_database_*} gauges for Prometheus
 * (registered once per database, NaN while unknown, removed with the database).
 *
 * <p>Work is bounded: one pass per step, on one virtual thread, over the databases one at a time; a step that comes
 * while the previous pass still runs is skipped (and counted). Thread-safe: {@link #sampleOnce} runs one pass at a time
 * (guarded by a flag, whose volatile reads and writes order one pass after the other), histories and latest samples
 * are in concurrent maps (histories synchronize themselves), the rate state and gauge registrations are touched by the
 * pass only.
 */
final class DatabaseMetricsSampler implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DatabaseMetricsSampler.class);
    static final Duration DEFAULT_STEP = Duration.ofSeconds(10);
    /** Internal setting (a system property, not a config key) so tests need not wait 10 s per point. */
    static final String STEP_PROPERTY = "palisade.internal.metrics-sample-step-millis";

    static final List<String> SERIES = List.of("connections", "transactions_per_second", "cpu_percent", "memory_bytes",
            "storage_bytes", "proxy_bytes_per_second", "proxy_connections", "broker_requests_per_second",
            "archive_lag_bytes");
    private static final int CONNECTIONS = 0;
    private static final int TPS = 1;
    private static final int CPU = 2;
    private static final int MEMORY = 3;
    private static final int STORAGE = 4;
    private static final int PROXY_BYTES = 5;
    private static final int PROXY_CONNECTIONS = 6;
    private static final int BROKER_REQUESTS = 7;
    private static final int ARCHIVE_LAG = 8;
    /** The series also exported as Prometheus gauges, by index. */
    private static final double[] UNKNOWN = unknown();
    private static final Map<Integer, String> EXPORTED = Map.of(CONNECTIONS, "palisade.database.connections",
            TPS, "palisade.database.transactions.per.second", CPU, "palisade.database.cpu.percent",
            MEMORY, "palisade.database.memory.bytes", STORAGE, "palisade.database.storage.bytes");

    private final Duration step;
    private final InstantSource clock;
    private final MetadataStore store;
    private final String hostId;
    private final DatabaseService service;
    private final MeterRegistry registry;
    private final Optional<ToIntFunction<String>> proxyConnections;
    private final Supplier<Optional<BackupService>> backups;
    private final Map<String, DatabaseHistory> histories = new ConcurrentHashMap<>();
    private final Map<String, Totals> previous = new HashMap<>();
    /** The latest sample per database, read by its exported gauges. */
    private final Map<String, double[]> latest = new ConcurrentHashMap<>();
    /** The exported gauges per database: registered when a pass first sees it, removed with its history. */
    private final Map<String, List<Meter>> exported = new HashMap<>();
    private final AtomicBoolean passRunning = new AtomicBoolean();
    private final AtomicLong skippedPasses = new AtomicLong();
    private ScheduledExecutorService ticker;

    /** Cumulative counters of one sample, for the rates of the next. */
    private record Totals(long atMillis, double transactions, double cpuMillis, double proxyBytes,
            double brokerRequests) {}

    /**
     * @param proxyConnections the proxy's open client connections per database, when the proxy runs (its byte meters
     *     are then read from the registry; without a proxy the proxy series are null)
     * @param backups the backup service when backups are enabled
     */
    DatabaseMetricsSampler(Duration step, InstantSource clock, MetadataStore store, String hostId,
            DatabaseService service, MeterRegistry registry, Optional<ToIntFunction<String>> proxyConnections,
            Supplier<Optional<BackupService>> backups) {
        this.step = requireNonNull(step, "step is null");
        this.clock = requireNonNull(clock, "clock is null");
        this.store = requireNonNull(store, "store is null");
        this.hostId = requireNonNull(hostId, "hostId is null");
        this.service = requireNonNull(service, "service is null");
        this.registry = requireNonNull(registry, "registry is null");
        this.proxyConnections = requireNonNull(proxyConnections, "proxyConnections is null");
        this.backups = requireNonNull(backups, "backups is null");
        new DatabaseHistory(step, SERIES.size(), clock); // validates the step
        io.micrometer.core.instrument.FunctionCounter.builder("palisade.metrics.sampler.skipped.passes",
                        skippedPasses, AtomicLong::get)
                .description("Sampling steps skipped because the previous pass was still running")
                .register(registry);
    }

    /** The step from the internal setting, else 10 s. */
    static Duration configuredStep() {
        long millis = Long.getLong(STEP_PROPERTY, DEFAULT_STEP.toMillis());
        return Duration.ofMillis(millis);
    }

    Duration step() {
        return step;
    }

    /** Starts sampling once a step; the first pass right away. */
    synchronized DatabaseMetricsSampler start() {
        if (ticker != null) {
            throw new IllegalStateException("the sampler is already started");
        }
        ticker = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("palisade-metrics-sampler").daemon().factory());
        ticker.scheduleAtFixedRate(() -> Thread.ofVirtual().name("palisade-metrics-pass").start(this::sampleOnce),
                0, step.toMillis(), TimeUnit.MILLISECONDS);
        return this;
    }

    /** The history of a database sampled on this host, if any pass has seen it running. */
    Optional<DatabaseHistory> history(String databaseId) {
        return Optional.ofNullable(histories.get(databaseId));
    }

    /** One pass over the running databases; returns false (and does nothing) if another pass is still running. */
    boolean sampleOnce() {
        if (!passRunning.compareAndSet(false, true)) {
            skippedPasses.incrementAndGet();
            return false;
        }
        try {
            pass();
            return true;
        } catch (RuntimeException e) {
            log.warn("metrics sampling pass failed: {}", e.getMessage());
            return true;
        } finally {
            passRunning.set(false);
        }
    }

    private void pass() {
        List<DatabaseRecord> records = store.listByHost(hostId);
        Set<String> known = new HashSet<>();
        Map<String, Long> archiveLag = new HashMap<>();
        backups.get().ifPresent(service -> service.statuses()
                .forEach(status -> archiveLag.put(status.databaseId(), status.lagBytes())));
        for (DatabaseRecord record : records) {
            if (record.state() == DatabaseState.DELETING) {
                continue;
            }
            known.add(record.id());
            if (record.state() != DatabaseState.RUNNING) {
                previous.remove(record.id());
                latest.remove(record.id()); // its gauges say NaN (unknown) until it runs again
                continue;
            }
            double[] values = sample(record, archiveLag);
            histories.computeIfAbsent(record.id(), id -> new DatabaseHistory(step, SERIES.size(), clock))
                    .record(values);
            latest.put(record.id(), values);
            exported.computeIfAbsent(record.id(), this::registerGauges);
        }
        histories.keySet().retainAll(known);
        previous.keySet().retainAll(known);
        latest.keySet().retainAll(known);
        for (var it = exported.entrySet().iterator(); it.hasNext(); ) {
            var entry = it.next();
            if (!known.contains(entry.getKey())) {
                entry.getValue().forEach(registry::remove);
                it.remove();
            }
        }
    }

    /**
     * One gauge per exported series for a database, reading its latest sample ({@code NaN} while unknown). Registered
     * once and kept until the database is deleted, so a scrape never meets a series being replaced.
     */
    private List<Meter> registerGauges(String databaseId) {
        List<Meter> meters = new ArrayList<>();
        EXPORTED.forEach((index, name) -> meters.add(Gauge.builder(name, latest,
                        values -> values.getOrDefault(databaseId, UNKNOWN)[index])
                .description("palisade's latest sample of " + SERIES.get(index) + " (the sampler's step; NaN when "
                        + "unknown)")
                .tag("database", databaseId)
                .strongReference(true)
                .register(registry)));
        return meters;
    }

    private double[] sample(DatabaseRecord record, Map<String, Long> archiveLag) {
        String id = record.id();
        double[] values = new double[SERIES.size()];
        java.util.Arrays.fill(values, Double.NaN);
        long now = clock.millis();
        InstanceStats stats = null;
        try {
            stats = service.stats(record.accountId(), id);
        } catch (RuntimeException e) {
            log.debug("metrics: no stats for {}: {}", id, e.getMessage());
        }
        double[] activity = activity(record);
        double cpuMillis = Double.NaN;
        if (stats != null) {
            values[MEMORY] = known(stats.memoryBytes());
            values[STORAGE] = known(stats.diskBytes());
            cpuMillis = known(stats.cpuMillis());
        }
        values[CONNECTIONS] = stats != null && stats.connections() >= 0 ? stats.connections() : activity[0];
        double proxyBytes = Double.NaN;
        if (proxyConnections.isPresent()) {
            values[PROXY_CONNECTIONS] = proxyConnections.get().applyAsInt(id);
            proxyBytes = counter("palisade.proxy.bytes.received", id) + counter("palisade.proxy.bytes.sent", id);
        }
        double brokerRequests = counter("palisade.broker.database.requests", id);
        Long lag = archiveLag.get(id);
        values[ARCHIVE_LAG] = lag == null ? Double.NaN : lag;

        Totals totals = new Totals(now, activity[1], cpuMillis, proxyBytes, brokerRequests);
        Totals before = previous.put(id, totals);
        if (before != null && totals.atMillis() > before.atMillis()) {
            double seconds = (totals.atMillis() - before.atMillis()) / 1000.0;
            values[TPS] = rate(before.transactions(), totals.transactions(), seconds);
            values[CPU] = rate(before.cpuMillis(), totals.cpuMillis(), seconds) / 10; // ms per s → percent of a core
            values[PROXY_BYTES] = rate(before.proxyBytes(), totals.proxyBytes(), seconds);
            values[BROKER_REQUESTS] = rate(before.brokerRequests(), totals.brokerRequests(), seconds);
        }
        return values;
    }

    /**
     * {@code [connections, commits + rollbacks]} of the tenant's database from {@code pg_stat_database}, over a
     * management connection closed again before this returns; {@code NaN} where the rung does not tell (schema) or the
     * server did not answer.
     */
    private double[] activity(DatabaseRecord record) {
        Rung rung = record.isolation();
        if (rung == Rung.SCHEMA) {
            return new double[] {Double.NaN, Double.NaN};
        }
        try {
            io.palisade.spi.AdminAccess access;
            Optional<String> database;
            if (rung == Rung.DATABASE) {
                io.palisade.spi.TenantPlace place = service.tenantPlace(record.id());
                access = place.admin();
                database = Optional.of(place.database());
            } else {
                access = service.adminAccess(record.id());
                database = Optional.empty();
            }
            String sql = "SELECT coalesce(sum(numbackends), 0), coalesce(sum(xact_commit + xact_rollback), 0)"
                    + " FROM pg_stat_database WHERE " + (database.isPresent() ? "datname = ?"
                            : "datname NOT IN ('postgres', 'template0', 'template1')");
            try (Connection connection = AdminConnection.open(access, "postgres");
                    PreparedStatement statement = connection.prepareStatement(sql)) {
                statement.setQueryTimeout(5);
                if (database.isPresent()) {
                    statement.setString(1, database.get());
                }
                try (ResultSet rows = statement.executeQuery()) {
                    rows.next();
                    return new double[] {rows.getLong(1), rows.getLong(2)};
                }
            }
        } catch (SQLException | RuntimeException e) {
            log.debug("metrics: no activity for {}: {}", record.id(), e.getMessage());
            return new double[] {Double.NaN, Double.NaN};
        }
    }

    private double counter(String name, String databaseId) {
        Counter counter = registry.find(name).tag("database", databaseId).counter();
        return counter == null ? 0 : counter.count();
    }

    private static double[] unknown() {
        double[] values = new double[SERIES.size()];
        java.util.Arrays.fill(values, Double.NaN);
        return values;
    }

    private static double known(long value) {
        return value < 0 ? Double.NaN : value;
    }

    /** Per second; unknown when either side is unknown or the counter went backwards (a restart reset it). */
    private static double rate(double before, double after, double seconds) {
        if (Double.isNaN(before) || Double.isNaN(after) || after < before) {
            return Double.NaN;
        }
        return (after - before) / seconds;
    }

    @Override
    public synchronized void close() throws InterruptedException {
        if (ticker != null) {
            ticker.shutdownNow();
            ticker.awaitTermination(10, TimeUnit.SECONDS);
        }
        // a pass under way ends within its statement timeouts; the services it reads close after this
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (passRunning.get() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
    }
}
