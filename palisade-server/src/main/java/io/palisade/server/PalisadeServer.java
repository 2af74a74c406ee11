package io.palisade.server;

import static java.util.Objects.requireNonNull;

import io.palisade.agent.ProcessDriver;
import io.palisade.agent.ProcessDriverConfig;
import io.palisade.api.ApiServer;
import io.palisade.api.ApiTls;
import io.palisade.api.ConnectionInfo;
import io.palisade.api.DatabaseService;
import io.palisade.api.TenantServerDatabases;
import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.store.EmbeddedStoreServer;
import io.palisade.store.MetadataStore;
import io.palisade.store.SecretBox;
import io.palisade.proxy.PostgresProxy;
import io.palisade.proxy.ProxyConfig;
import io.palisade.broker.SqlBroker;
import io.palisade.spi.BackendResolver;
import io.palisade.spi.TenantAuthenticator;
import io.palisade.spi.BrokerTokenVerifier;
import io.palisade.spi.Endpoint;
import java.util.concurrent.CompletableFuture;
import io.palisade.vmm.VmDriver;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The composition root: wires store, drivers, the database service and the REST API for one process, in that order,
 * and closes them in reverse. Not thread-safe: one owner starts and closes it.
 */
public final class PalisadeServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PalisadeServer.class);
    public static final String BOOTSTRAP_KEY_ENV = "PALISADE_BOOTSTRAP_API_KEY";

    private final ServerConfig config;
    private final List<AutoCloseable> closeables = new ArrayList<>();
    private final Optional<String> generatedApiKey;
    private final ApiServer api;
    private final DatabaseService service;
    private final MetadataStore store;
    /** The account created on first start; its keys are the operator's (e.g. per-database series in /metrics). */
    static final String ADMIN_ACCOUNT = "acct-admin";
    private final PrometheusMeterRegistry metrics;
    private Optional<ApiTls> apiTls = Optional.empty();
    private final PostgresProxy proxy;
    private io.palisade.agent.shared.SharedServerPool sharedServers;
    private io.palisade.api.MoveService moves;
    private DatabaseMetricsSampler sampler;

    private PalisadeServer(ServerConfig config, Optional<String> bootstrapKey) {
        this.config = requireNonNull(config, "config is null");
        try {
            Path dataDir = config.dataDir();
            closeables.add(DataDirLock.acquire(dataDir)); // released last
            ServiceUser user = ServiceUser.resolve(config.serviceUser());
            user.checkCanTraverse(dataDir.resolve("instances"));
            Path cacheDir = dataDir.resolve("cache");

            this.store = openStore(config, dataDir, cacheDir, user);
            this.generatedApiKey = bootstrapAccount(store, bootstrapKey);
            SecretBox secrets = SecretBox.open(dataDir.resolve("secrets/master.key"));

            AtomicReference<DatabaseService> serviceRef = new AtomicReference<>();
            AtomicReference<io.palisade.api.RestoreService> restoresRef = new AtomicReference<>();
            AtomicReference<DatabaseMetricsSampler> samplerRef = new AtomicReference<>();
            Map<String, Object> healthExtras = new LinkedHashMap<>();
            this.metrics = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            new io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics().bindTo(metrics);
            new io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics().bindTo(metrics);
            new io.micrometer.core.instrument.binder.system.ProcessorMetrics().bindTo(metrics);
            BackendResolver resolver = new BackendResolver() {
                @Override
                public CompletableFuture<Optional<io.palisade.spi.Backend>> resolve(String databaseId) {
                    DatabaseService ready = serviceRef.get();
                    return ready == null ? CompletableFuture.completedFuture(Optional.empty()) : ready.resolve(databaseId);
                }

                @Override
                public void touch(String databaseId) {
                    DatabaseService ready = serviceRef.get();
                    if (ready != null) {
                        ready.touch(databaseId);
                    }
                }
            };
            TenantAuthenticator authenticator = databaseId -> {
                DatabaseService ready = serviceRef.get();
                return ready == null ? CompletableFuture.completedFuture(Optional.empty()) : ready.credentials(databaseId);
            };
            BrokerTokenVerifier verifier = (databaseId, token) -> {
                DatabaseService ready = serviceRef.get();
                return ready == null ? Optional.empty() : ready.verify(databaseId, token);
            };
            if (config.proxyEnabled()) {
                ProxyConfig proxyConfig = config.proxyConfig(dataDir.resolve("tls"));
                this.proxy = new PostgresProxy(proxyConfig, resolver, authenticator, metrics).start();
                closeables.add(proxy);
                Map<String, Object> proxyHealth = new LinkedHashMap<>();
                proxyHealth.put("port", proxy.port());
                proxyHealth.put("domain", config.proxyDomain());
                proxy.tlsMaterial().caCertificateFile().ifPresent(ca -> proxyHealth.put("ca_certificate", ca.toString()));
                healthExtras.put("proxy", proxyHealth);
                log.info("PostgreSQL proxy on {}:{} for *.{}{}", config.proxyBindHost(), proxy.port(), config.proxyDomain(),
                        proxy.tlsMaterial().caCertificateFile().map(ca -> "; CA certificate for sslrootcert: " + ca).orElse(""));
            } else {
                this.proxy = null;
            }
            SqlBroker broker = new SqlBroker(config.brokerConfig(), resolver, authenticator, verifier, metrics);
            broker.setServerDatabases(new TenantServerDatabases(store, serviceRef::get));
            this.apiTls = apiTls(config, dataDir, healthExtras);
            this.api = new ApiServer(
                    config.apiHost(), config.apiPort(), apiTls, store, serviceRef::get, connectionInfo(),
                    () -> healthExtras,
                    restoresRef::get, app -> {
                        new MetricsEndpoint(metrics, store, config.metricsToken()).register(app);
                        broker.register(app);
                        new DatabaseMetricsRoute(serviceRef::get, samplerRef::get).register(app);
                        console(config, dataDir, app);
                    });
            closeables.add(broker);
            closeables.add(api);

            Cgroups cgroups = Cgroups.detect(config.cgroupParent());
            if (cgroups.mode() == Cgroups.Mode.NONE) {
                log.warn("no usable cgroups ({}): tenant servers run WITHOUT CPU/memory caps", cgroups.reason());
            }
            healthExtras.put("cgroups", Map.of("mode", cgroups.mode().name().toLowerCase(java.util.Locale.ROOT),
                    "reason", cgroups.reason()));
            List<IsolationDriver> drivers = new ArrayList<>();
            io.palisade.agent.shared.SharedServerPool sharedServers = new io.palisade.agent.shared.SharedServerPool(
                    config.sharedServers(dataDir.resolve("shared"), cacheDir, user, cgroups));
            closeables.add(config.stopInstancesOnExit() ? sharedServers : sharedServers::detach);
            this.sharedServers = sharedServers;
            SharedRungs.register(sharedServers, metrics, healthExtras);
            drivers.add(new io.palisade.agent.shared.SharedRungDriver(sharedServers,
                    io.palisade.agent.shared.TenantLayout.DATABASE));
            drivers.add(new io.palisade.agent.shared.SharedRungDriver(sharedServers,
                    io.palisade.agent.shared.TenantLayout.SCHEMA));
            drivers.add(new ProcessDriver(new ProcessDriverConfig(
                    dataDir.resolve("instances/process"), cacheDir, user, cgroups, config.startTimeout(),
                    config.restoreTimeout(), !config.stopInstancesOnExit())));
            if (config.vmEnabled()) {
                VmDriver vm = new VmDriver(config.vmDriverConfig(user, cgroups), config.vmTemplatesDir(), true);
                drivers.add(vm);
                if (config.vmPrepareTemplate()) {
                    // the first create of the default plan then clones; progress in the log and /v1/health (rung vm)
                    vm.prepareTemplate(io.palisade.spi.Plan.NANO, io.palisade.spi.PostgresVersion.DEFAULT,
                            java.time.Duration.ofSeconds(10));
                }
            } else {
                refuseVmDatabases(store, config.hostId());
            }

            this.service = new DatabaseService(
                    store, secrets, drivers, config.hostId(), config.createWait(), config.stopInstancesOnExit(),
                    config.vmSuspendAfter());
            closeables.add(service);
            service.setQuotas(config.quotas());
            for (DriverProbe probe : service.probes().values()) {
                log.info("isolation '{}': {} (accelerator {}) — {}{}", probe.driver(),
                        probe.usable() ? "usable" : "NOT usable", probe.accelerator(), probe.reason(),
                        probe.driver().equals(service.defaultIsolation().wireName()) ? " [default]" : "");
            }
            if (proxy != null) {
                // the broker's pool and the proxy's parked backend connections go the same way
                service.setConnectionsInvalidated(id -> {
                    proxy.evictIdleBackends(id);
                    broker.evict(id);
                });
            } else {
                service.setConnectionsInvalidated(broker::evict);
            }
            if (proxy != null) {
                service.setOpenConnections(proxy::activeConnections);
            }
            // a deleted database's per-database meters and cached secrets go with it
            service.setDatabaseDeleted(id -> {
                if (proxy != null) {
                    proxy.forgetDatabase(id);
                }
                broker.forget(id);
            });
            Optional<io.palisade.backup.BackupService> backups = Optional.empty();
            if (config.backupEnabled()) {
                backups = Optional.of(Backups.open(config, store, secrets, service, metrics, healthExtras, closeables));
                io.palisade.api.RestoreService restores = new io.palisade.api.RestoreService(service, backups.get());
                restores.failInterrupted();
                restoresRef.set(restores);
            }
            Optional<io.palisade.backup.BackupService> sampledBackups = backups;
            this.sampler = new DatabaseMetricsSampler(DatabaseMetricsSampler.configuredStep(),
                    java.time.InstantSource.system(), store, config.hostId(), service, metrics,
                    Optional.ofNullable(proxy)
                            .map(p -> (java.util.function.ToIntFunction<String>) p::activeConnections),
                    () -> sampledBackups);
            closeables.add(sampler);
            samplerRef.set(sampler);
            this.moves = new io.palisade.api.MoveService(service);
            closeables.add(moves);
            service.setMoves(moves);
            serviceRef.set(service);
            for (io.palisade.store.DatabaseState state : io.palisade.store.DatabaseState.values()) {
                io.micrometer.core.instrument.Gauge.builder("palisade_databases", store,
                                s -> s.listByHost(config.hostId()).stream().filter(r -> r.state() == state).count())
                        .description("Databases on this host by state")
                        .tag("state", state.wireName())
                        .register(metrics);
            }
            for (io.palisade.store.MovePhase phase : io.palisade.store.MovePhase.values()) {
                io.micrometer.core.instrument.Gauge.builder("palisade_moves", store,
                                s -> s.moves().countByPhase().get(phase))
                        .description("Moves between rungs by phase (finished ones kept until their database is deleted)")
                        .tag("phase", phase.wireName())
                        .register(metrics);
            }
            List<String> actions = service.reconcile(true);
            if (restoresRef.get() != null) {
                restoresRef.get().cleanStaging();
            }
            log.info("reconciled {} action(s) on host {}", actions.size(), config.hostId());
            moves.recover();
            api.markReady();
            sampler.start();
            startReaper(config.reconcileInterval());
        } catch (RuntimeException | Error e) {
            closeQuietly();
            throw e;
        }
    }

    private void startReaper(java.time.Duration interval) {
        var reaper = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("palisade-reconciler").daemon().factory());
        reaper.scheduleWithFixedDelay(() -> {
            try {
                service.reapExpired(java.time.Instant.now());
                service.reconcile(false);
                moves.recover();
                service.suspendIdle(java.time.Instant.now());
                service.reconcileBackups();
            } catch (RuntimeException e) {
                log.warn("reaper/reconcile pass failed: {}", e.getMessage());
            }
        }, interval.toMillis(), interval.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        closeables.add(() -> {
            reaper.shutdownNow();
            reaper.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS);
        });
    }

    /** {@code vm.enabled=false} on a host that has vm databases would leave them unreachable: refused, naming them. */
    private static void refuseVmDatabases(MetadataStore store, String hostId) {
        java.util.Set<String> onHost = new java.util.HashSet<>();
        java.util.Set<String> vmDatabases = new java.util.LinkedHashSet<>();
        for (io.palisade.store.DatabaseRecord record : store.listByHost(hostId)) {
            onHost.add(record.id());
            if (record.isolation() == io.palisade.spi.Rung.VM) {
                vmDatabases.add(record.id());
            }
        }
        // a move from or to the vm rung that a stop interrupted needs the vm driver to be finished or undone
        for (io.palisade.store.MoveRecord move : store.moves().unfinished()) {
            if ((move.from() == io.palisade.spi.Rung.VM || move.to() == io.palisade.spi.Rung.VM)
                    && onHost.contains(move.databaseId())) {
                vmDatabases.add(move.databaseId());
            }
        }
        if (!vmDatabases.isEmpty()) {
            throw PalisadeException.invalid("vm.enabled=false, but host " + hostId + " has " + vmDatabases.size()
                    + " vm database(s) or move(s) from or to the vm rung: " + vmDatabases.stream().limit(5).toList()
                    + (vmDatabases.size() > 5 ? " …" : "") + "; delete or move them first, or keep vm.enabled=true");
        }
    }

    public static PalisadeServer start(ServerConfig config, Optional<String> bootstrapKey) {
        return new PalisadeServer(config, bootstrapKey);
    }

    private MetadataStore openStore(ServerConfig config, Path dataDir, Path cacheDir, ServiceUser user) {
        if (config.storeUrl().isPresent()) {
            log.info("metadata store: external {}", config.storeUrl().get().replaceAll("password=[^&]*", "password=***"));
            MetadataStore external = new MetadataStore(
                    config.storeUrl().get(), config.storeUsername().orElse(null), config.storePassword().orElse(null));
            closeables.add(external);
            return external;
        }
        ServiceUser storeUser = user.dropsPrivileges() ? ServiceUser.resolve(user.name() + "-store") : user;
        EmbeddedStoreServer embedded = EmbeddedStoreServer.start(dataDir.resolve("store"), cacheDir, storeUser);
        closeables.add(embedded);
        MetadataStore metadata = new MetadataStore(embedded.jdbcUrl(), embedded.username(), embedded.password());
        closeables.add(metadata);
        log.info("metadata store: embedded PostgreSQL under {}", dataDir.resolve("store"));
        return metadata;
    }

    /** The web console at {@code /console}: it reaches the API and the broker on this same port over loopback. */
    private void console(ServerConfig config, Path dataDir, io.javalin.Javalin app) {
        String host = config.apiHost();
        String loopback = host.isEmpty() || host.equals("0.0.0.0") || host.equals("::") ? "127.0.0.1"
                : host.contains(":") ? "[" + host + "]" : host;
        String scheme = apiTls.isPresent() ? "https://" : "http://";
        var api = new io.palisade.server.console.LoopbackApi(
                () -> java.net.URI.create(scheme + loopback + ":" + app.port()),
                apiTls.map(io.palisade.api.ApiTls::certificateFile));
        io.palisade.broker.BrokerConfig broker = config.brokerConfig();
        new io.palisade.server.console.ConsoleRoutes(api, new io.palisade.server.console.ConsoleSessions(),
                apiTls.isPresent(), new io.palisade.server.console.HostPage(api, dataDir),
                new io.palisade.server.console.SqlEditor.Limits(broker.maxRows(), broker.statementTimeout()))
                .register(app);
    }

    /** On first start creates the admin account; returns the API key if palisade generated it (to print once). */
    /**
     * HTTPS for the API if configured: the operator's certificate, else the proxy's (generated under
     * {@code <data-dir>/tls}, signed by the local CA clients already trust for PostgreSQL).
     */
    private static Optional<ApiTls> apiTls(ServerConfig config, Path dataDir, Map<String, Object> healthExtras) {
        if (!config.apiTlsEnabled()) {
            return Optional.empty();
        }
        Map<String, Object> health = new LinkedHashMap<>();
        health.put("tls", true);
        healthExtras.put("api", health);
        if (config.apiTlsCertificateFile().isPresent()) {
            return Optional.of(new ApiTls(config.apiTlsCertificateFile().get(), config.apiTlsPrivateKeyFile().get()));
        }
        io.palisade.proxy.TlsMaterial material =
                io.palisade.proxy.TlsMaterial.loadOrGenerate(dataDir.resolve("tls"), config.proxyDomain());
        material.caCertificateFile().ifPresent(ca -> health.put("ca_certificate", ca.toString()));
        return Optional.of(new ApiTls(material.certificateFile(), material.privateKeyFile()));
    }

    private static Optional<String> bootstrapAccount(MetadataStore store, Optional<String> bootstrapKey) {
        if (store.hasAnyAccount()) {
            return Optional.empty();
        }
        String key = bootstrapKey.filter(k -> !k.isBlank()).orElse(null);
        if (key != null && key.length() < 16) {
            throw PalisadeException.invalid(BOOTSTRAP_KEY_ENV + " must be at least 16 characters long");
        }
        boolean generated = key == null;
        if (generated) {
            key = "pk_" + SecretBox.randomSecret(40);
        }
        store.createAccount(ADMIN_ACCOUNT, "admin");
        store.addApiKey(ADMIN_ACCOUNT, key);
        log.info("created the admin account{}", generated ? " with a generated API key" : " with " + BOOTSTRAP_KEY_ENV);
        return generated ? Optional.of(key) : Optional.empty();
    }

    private ConnectionInfo connectionInfo() {
        if (proxy == null) {
            return new DirectConnectionInfo(this::apiBaseUrl);
        }
        return new ProxyConnectionInfo(
                config.proxyDomain(),
                () -> config.proxyPublicPort().orElse(proxy.port()),
                config.proxyHostaddr(),
                proxy.tlsMaterial().caCertificateFile(),
                this::apiBaseUrl);
    }

    /** The public PostgreSQL port, if the proxy runs. */
    /** The shared servers behind the database and schema rungs (tests crash one to measure the blast radius). */
    public io.palisade.agent.shared.SharedServerPool sharedServers() {
        return sharedServers;
    }

    public java.util.OptionalInt proxyPort() {
        return proxy == null ? java.util.OptionalInt.empty() : java.util.OptionalInt.of(proxy.port());
    }

    /** Backend connections the proxy keeps parked for reuse for one database (0 without a proxy). */
    public int proxyIdleBackends(String databaseId) {
        return proxy == null ? 0 : proxy.idleBackendConnections(databaseId);
    }

    /** The proxy's event loops, each with a pool partition of its own (0 without a proxy). */
    public int proxyIoThreads() {
        return proxy == null ? 0 : proxy.ioThreads();
    }

    public Optional<java.nio.file.Path> caCertificate() {
        return proxy == null ? Optional.empty() : proxy.tlsMaterial().caCertificateFile();
    }

    public String apiBaseUrl() {
        String scheme = apiTls.isPresent() ? "https://" : "http://";
        return config.apiPublicUrl()
                .orElseGet(() -> scheme + config.apiHost() + ":" + (api == null ? config.apiPort() : api.port()));
    }

    public int apiPort() {
        return api.port();
    }

    public Optional<String> generatedApiKey() {
        return generatedApiKey;
    }

    public PrometheusMeterRegistry metrics() {
        return metrics;
    }

    /** The per-database sampler behind GET /v1/databases/{id}/metrics. */
    DatabaseMetricsSampler metricsSampler() {
        return sampler;
    }

    public MetadataStore store() {
        return store;
    }

    public DatabaseService service() {
        return service;
    }

    public ServerConfig config() {
        return config;
    }

    @Override
    public void close() {
        closeQuietly();
    }

    private synchronized void closeQuietly() {
        for (AutoCloseable closeable : closeables.reversed()) {
            try {
                closeable.close();
            } catch (Exception e) {
                log.warn("error while stopping {}: {}", closeable.getClass().getSimpleName(), e.getMessage());
            }
        }
        closeables.clear();
    }
}
