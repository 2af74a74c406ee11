package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ReferenceCountedOpenSslContext;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.palisade.pgwire.ScramSecret;
import io.palisade.spi.BackendResolver;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.TenantAuthenticator;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The public PostgreSQL port: one TLS listener for every database, routed by SNI {@code <id>.<domain>}, by
 * {@code options=endpoint=<id>}, or by a cleartext password {@code endpoint=<id>;<password>}. The proxy checks the
 * tenant login itself (SCRAM-SHA-256 as the server, against a secret derived from the password a
 * {@link TenantAuthenticator} returns) before it takes a connection slot, wakes a database or connects to it; then it
 * logs in to the database with the tenant password. Hands clients its own cancel keys, caps connections that have not
 * authenticated yet (in total and per source address), enforces per-database connection limits and
 * authentication/handshake/startup/idle timeouts, and exports per-database metrics. Netty's native epoll transport
 * where it loads, else NIO ({@link ProxyTransport}); event-loop threads named {@code palisade-proxy-*}, one per two
 * cores (at least one) unless {@code proxy.io-threads} says otherwise; the event loops are never blocked (the resolver's future is
 * completed elsewhere and the session hops back). {@link #start()} once, {@link #close()} idempotently; thread-safe.
 */
public final class PostgresProxy implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PostgresProxy.class);

    private final ProxyConfig config;
    private final BackendResolver resolver;
    private final TenantAuthenticator authenticator;
    private final MeterRegistry registry;
    private final TlsMaterial tlsMaterial;
    private final SslContext sslContext;
    private final CancelRegistry cancels = new CancelRegistry();
    private final DatabaseConnections connections;
    private final BackendPool backendPool;
    private final byte[] mockSaltSecret = new byte[32];
    private final PreAuthLimits limits;
    private final SecretCache secrets;
    private final ScramSecret decoySecret;
    private final String decoyPassword;
    private final AtomicInteger openClients = new AtomicInteger();
    private final ChannelGroup clientChannels = new DefaultChannelGroup("palisade-proxy-clients",
            GlobalEventExecutor.INSTANCE);
    private final ChannelGroup backendChannels = new DefaultChannelGroup("palisade-proxy-backends",
            GlobalEventExecutor.INSTANCE);
    private final ExecutorService cpuExecutor = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("palisade-proxy-scram-", 0).factory());
    private final Object lifecycle = new Object();
    private final ProxyTransport transport = ProxyTransport.detect();
    private EventLoopGroup acceptGroup;
    private EventLoopGroup ioGroup;
    private Channel serverChannel;
    private boolean closed;

    /**
     * Prepares the proxy: loads or generates TLS material (see {@link TlsMaterial#forConfig}) and builds the TLS
     * context. Nothing listens until {@link #start()}.
     *
     * @param resolver where a database runs; called only after the client's login was verified (it may wake one)
     * @param authenticator the tenant logins to verify clients against; must never wake anything
     */
    public PostgresProxy(ProxyConfig config, BackendResolver resolver, TenantAuthenticator authenticator,
            MeterRegistry registry) {
        this.config = requireNonNull(config, "config is null");
        this.resolver = requireNonNull(resolver, "resolver is null");
        this.authenticator = requireNonNull(authenticator, "authenticator is null");
        this.registry = requireNonNull(registry, "registry is null");
        this.tlsMaterial = TlsMaterial.forConfig(config);
        this.sslContext = buildSslContext(tlsMaterial);
        this.connections = new DatabaseConnections(registry, config.maxConnectionsPerDatabase());
        this.backendPool = new BackendPool(config.backendIdleTimeout(), config.maxIdleBackendsPerDatabase(), registry);
        SecureRandom random = new SecureRandom();
        random.nextBytes(mockSaltSecret);
        this.limits = new PreAuthLimits(config.maxUnauthenticated(), config.maxUnauthenticatedPerSource(),
                config.maxClientConnections());
        this.secrets = new SecretCache(cpuExecutor);
        byte[] decoy = new byte[24];
        random.nextBytes(decoy);
        this.decoyPassword = java.util.Base64.getEncoder().encodeToString(decoy);
        random.nextBytes(decoy);
        // derived while calibrating the proof floor on this machine
        this.decoySecret = secrets.calibrate(decoyPassword, Arrays.copyOf(decoy, 16));
        Gauge.builder("palisade.proxy.clients", openClients, AtomicInteger::get)
                .description("open client connections, handshakes included")
                .register(registry);
        Gauge.builder("palisade.proxy.clients.unauthenticated", limits, PreAuthLimits::unauthenticated)
                .description("client connections that have not authenticated yet")
                .register(registry);
    }

    private static SslContext buildSslContext(TlsMaterial material) {
        SslProvider provider = SslProvider.isAlpnSupported(SslProvider.OPENSSL) ? SslProvider.OPENSSL : SslProvider.JDK;
        try {
            return SslContextBuilder.forServer(material.certificateFile().toFile(), material.privateKeyFile().toFile())
                    .sslProvider(provider)
                    .protocols("TLSv1.3", "TLSv1.2")
                    .applicationProtocolConfig(new ApplicationProtocolConfig(
                            ApplicationProtocolConfig.Protocol.ALPN,
                            ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                            ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT,
                            "postgresql"))
                    .build();
        } catch (Exception e) {
            throw new PalisadeException(ErrorCode.INVALID_REQUEST, "cannot load the proxy's TLS certificate "
                    + material.certificateFile() + " and key " + material.privateKeyFile() + ": " + e.getMessage()
                    + "; the key must be an unencrypted PEM (PKCS#8) key matching the certificate", e);
        }
    }

    /** Binds the port. */
    public PostgresProxy start() {
        synchronized (lifecycle) {
            if (closed || serverChannel != null) {
                throw new IllegalStateException("the proxy can be started once");
            }
            acceptGroup = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("palisade-proxy-accept", true),
                    transport.ioHandlers().get());
            ioGroup = new MultiThreadIoEventLoopGroup(
                    eventLoops(config.ioThreads(), Runtime.getRuntime().availableProcessors()),
                    new DefaultThreadFactory("palisade-proxy-io", true), transport.ioHandlers().get());
            ServerBootstrap bootstrap = new ServerBootstrap()
                    .group(acceptGroup, ioGroup)
                    .channel(transport.serverChannel())
                    .option(ChannelOption.SO_BACKLOG, 1024)
                    .option(ChannelOption.SO_REUSEADDR, true)
                    .childOption(ChannelOption.TCP_NODELAY, true)
                    .childOption(ChannelOption.SO_KEEPALIVE, true)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel channel) {
                            accept(channel);
                        }
                    });
            try {
                serverChannel = bootstrap.bind(config.bindHost(), config.port()).syncUninterruptibly().channel();
            } catch (RuntimeException e) {
                shutdownGroups();
                throw new PalisadeException(ErrorCode.INTERNAL, "cannot listen on " + config.bindHost() + ":"
                        + config.port() + " for PostgreSQL clients: " + e.getMessage()
                        + "; set proxy.port to a free port or stop whatever holds it", e);
            }
            log.info("PostgreSQL proxy listening on {}:{} for *.{} ({} transport, {} event loops; TLS via {},"
                    + " certificate {}{})", config.bindHost(), port(), config.domain(), transport.name(),
                    ioThreads(), sslContext instanceof ReferenceCountedOpenSslContext ? "OpenSSL/BoringSSL" : "JDK",
                    tlsMaterial.certificateFile(), tlsMaterial.caCertificateFile()
                            .map(ca -> "; clients verify it with sslrootcert=" + ca)
                            .orElse(""));
            return this;
        }
    }

    private void accept(SocketChannel channel) {
        PreAuthLimits.Ticket ticket = limits.tryEnter(channel.remoteAddress().getAddress());
        if (ticket == null) {
            rejected("max-unauthenticated");
            channel.close();
            return;
        }
        openClients.incrementAndGet();
        channel.closeFuture().addListener(future -> {
            openClients.decrementAndGet();
            ticket.leave();
        });
        clientChannels.add(channel);
        ClientSession session = new ClientSession(this, ticket);
        channel.pipeline()
                .addLast("sniffer", new StartupSniffer(session, config.maxStartupPacketSize()))
                .addLast("session", session);
    }

    /** The bound port (the actual one when configured with 0). */
    public int port() {
        synchronized (lifecycle) {
            if (serverChannel == null) {
                throw new IllegalStateException("the proxy is not started");
            }
            return ((InetSocketAddress) serverChannel.localAddress()).getPort();
        }
    }

    public ProxyConfig config() {
        return config;
    }

    /** The socket transport in use: {@code epoll} (Linux native) or {@code NIO}. */
    public String transport() {
        return transport.name();
    }

    /**
     * Event loops for {@code proxy.io-threads}: the configured number, or for 0 one per two cores, at least one. The
     * proxy shares the host's cores with the tenants' servers and its clients; a loop that finds several sessions ready
     * per wake-up spends less per transaction: on 2 cores, pgbench {@code -S} at 8 clients cost the proxy 32–33 µs of
     * CPU per transaction with one loop against 39–46 µs with two (PgBouncer, single-threaded: 31–35), docs/proxy.md.
     */
    static int eventLoops(int configured, int cores) {
        return configured > 0 ? configured : Math.max(1, cores / 2);
    }

    /** The number of event-loop threads relaying connections. */
    public int ioThreads() {
        synchronized (lifecycle) {
            if (ioGroup == null) {
                throw new IllegalStateException("the proxy is not started");
            }
            return ((io.netty.util.concurrent.MultithreadEventExecutorGroup) ioGroup).executorCount();
        }
    }

    /** The certificate served, and the generated CA clients should trust (if palisade generated it). */
    public TlsMaterial tlsMaterial() {
        return tlsMaterial;
    }

    /** Open client connections (handshakes included). */
    public int openClientConnections() {
        return openClients.get();
    }

    /**
     * Open connections from the proxy to database instances (cancel connections and parked ones included, see
     * {@link #idleBackendConnections()}).
     */
    public int openBackendConnections() {
        return backendChannels.size();
    }

    /** Open relayed connections to one database, as counted against its limit. */
    public int activeConnections(String databaseId) {
        return connections.active(databaseId);
    }

    /** Drops the meters, the cached login secret and the parked backend connections of a deleted database. */
    public void forgetDatabase(String databaseId) {
        connections.forget(requireNonNull(databaseId, "databaseId is null"));
        secrets.forget(databaseId);
        backendPool.forget(databaseId);
    }

    /**
     * Closes the database's parked backend connections, and makes every backend connection to it logged in before
     * this call unfit for reuse. Call it whenever the server behind the database changes or ends its sessions or its
     * login changes: suspend, delete, password rotation, restart, restore, a move's cutover. Called from a thread that
     * is not one of the proxy's event loops, it returns once the parked connections are closed (bounded: 2 s). Any
     * thread.
     */
    public void evictIdleBackends(String databaseId) {
        backendPool.evict(requireNonNull(databaseId, "databaseId is null"), true);
    }

    /** Backend connections parked for reuse or being reset, for one database (they are not client connections). */
    public int idleBackendConnections(String databaseId) {
        return backendPool.idle(databaseId);
    }

    /** Backend connections parked for reuse or being reset, in total. */
    public int idleBackendConnections() {
        return backendPool.idle();
    }

    /** Client connections that have not authenticated yet. */
    public int unauthenticatedConnections() {
        return limits.unauthenticated();
    }

    /** Issued cancel keys still mapped to a live session. */
    public int registeredCancelKeys() {
        return cancels.size();
    }

    // ---- for the handlers ----

    BackendResolver resolver() {
        return resolver;
    }

    TenantAuthenticator authenticator() {
        return authenticator;
    }

    SecretCache secrets() {
        return secrets;
    }

    /** A secret nobody knows the password of: unknown ids and other users are checked against it. */
    ScramSecret decoySecret() {
        return decoySecret;
    }

    /** A password nobody knows: cleartext logins for unknown ids are compared with it. */
    String decoyPassword() {
        return decoyPassword;
    }

    SslContext sslContext() {
        return sslContext;
    }

    ProxyTransport socketTransport() {
        return transport;
    }

    CancelRegistry cancels() {
        return cancels;
    }

    DatabaseConnections connections() {
        return connections;
    }

    BackendPool backendPool() {
        return backendPool;
    }

    /** Where CPU-heavy steps (SCRAM key derivation) run, so the event loops stay responsive. */
    Executor cpuExecutor() {
        return cpuExecutor;
    }

    void trackBackend(Channel channel) {
        backendChannels.add(channel);
    }

    void rejected(String reason) {
        Counter.builder("palisade.proxy.rejections")
                .description("client connections refused or dropped before or during startup, by reason")
                .tag("reason", reason)
                .register(registry)
                .increment();
    }

    void tlsEstablished(boolean direct) {
        Counter.builder("palisade.proxy.tls.handshakes")
                .description("completed TLS handshakes, by how the client started TLS")
                .tag("negotiation", direct ? "direct" : "sslrequest")
                .register(registry)
                .increment();
    }

    /**
     * The SCRAM salt for a (database, user): stable, so repeated probes see the same salt, and the same function for
     * known and unknown ids, so the salt tells nothing. The tenant's secret is derived with it.
     */
    byte[] mockSalt(String databaseId, String user) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(mockSaltSecret, "HmacSHA256"));
            return Arrays.copyOf(mac.doFinal((databaseId + "\0" + user).getBytes(StandardCharsets.UTF_8)), 16);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available in this JDK", e);
        }
    }

    /** Forwards a client's CancelRequest to the backend that owns the key, if any. The client gets no answer. */
    void cancel(int processId, int secretKey, EventLoop eventLoop) {
        var target = cancels.cancel(processId, secretKey);
        Counter.builder("palisade.proxy.cancels")
                .description("cancel requests received, by whether the key was known")
                .tag("result", target.isPresent() ? "forwarded" : "unknown-key")
                .register(registry)
                .increment();
        if (target.isEmpty()) {
            return;
        }
        CancelRegistry.Target t = target.get();
        var connect = new Bootstrap()
                .group(eventLoop)
                .channel(transport.socketChannel())
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) config.backendConnectTimeout().toMillis())
                .handler(new ChannelInboundHandlerAdapter())
                .connect(t.endpoint().host(), t.endpoint().port());
        trackBackend(connect.channel());
        connect.addListener((ChannelFutureListener) future -> {
            if (future.isSuccess()) {
                future.channel()
                        .writeAndFlush(PgWire.cancelRequest(future.channel().alloc(), t.processId(), t.secretKey()))
                        .addListener(ChannelFutureListener.CLOSE);
            } else {
                log.warn("cannot forward a cancel request to database {} at {}: {}", t.databaseId(), t.endpoint(),
                        future.cause().toString());
            }
        });
    }

    /**
     * Stops listening and closes every connection; bounded (a few seconds). Idempotent. Must not be called from one of
     * the proxy's own event-loop threads.
     */
    @Override
    public void close() {
        synchronized (lifecycle) {
            if (closed) {
                return;
            }
            closed = true;
            if (serverChannel != null) {
                serverChannel.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
            }
            clientChannels.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
            backendChannels.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
            shutdownGroups();
            cpuExecutor.shutdownNow();
            sslContextRelease();
        }
    }

    private void sslContextRelease() {
        ReferenceCountUtil.release(sslContext);
    }

    private void shutdownGroups() {
        for (EventLoopGroup group : new EventLoopGroup[] {acceptGroup, ioGroup}) {
            if (group != null) {
                group.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
            }
        }
    }
}
