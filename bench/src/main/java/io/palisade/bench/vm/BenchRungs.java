package io.palisade.bench.vm;

import static java.util.Objects.requireNonNull;

import io.palisade.agent.ProcessDriver;
import io.palisade.agent.ProcessDriverConfig;
import io.palisade.host.Cgroups;
import io.palisade.host.PostgresServer;
import io.palisade.host.ServiceUser;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.TestingDirectories;
import io.palisade.vmm.VmDriver;
import io.palisade.vmm.VmDriverConfig;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;

/**
 * The drivers a benchmark provisions tenants with ({@code vm} and {@code process}, real drivers on a private work dir
 * under {@code target/test-work}), and the tenants it provisioned. {@link #close()} destroys every instance either
 * driver still has and deletes the work dir. Not thread-safe: one benchmark thread uses it.
 */
public final class BenchRungs implements AutoCloseable {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Path work;
    private final String vmPool;
    private final boolean processCaps;
    private final List<Tenant> tenants = new ArrayList<>();
    private boolean cloneCreate = true;
    private VmDriver vm;
    private ProcessDriver process;

    /**
     * @param prefix the work dir's name prefix
     * @param vmPool the vm driver's network pool, one no test and no other benchmark uses
     * @param processCaps whether process tenants get cgroup CPU/memory caps (false: the shared-machine baseline)
     */
    public BenchRungs(String prefix, String vmPool, boolean processCaps) {
        this.work = TestingDirectories.newWorkDir(requireNonNull(prefix, "prefix is null"));
        this.vmPool = requireNonNull(vmPool, "vmPool is null");
        this.processCaps = processCaps;
    }

    /** Makes the {@code vm} driver boot every create cold instead of cloning a template (before its first use). */
    public BenchRungs coldBootOnly() {
        if (vm != null) {
            throw new IllegalStateException("the vm driver is in use already");
        }
        cloneCreate = false;
        return this;
    }

    /** The {@code vm} driver (created on first use; fails when the rung is unusable here). */
    public VmDriver vm() {
        if (vm == null) {
            vm = new VmDriver(VmDriverConfig.defaults(
                            work.resolve("vm"),
                            TestingDirectories.repoDir().resolve(".cache/guest/current"),
                            ServiceUser.resolve(ServiceUser.DEFAULT_NAME),
                            Cgroups.detect("palisade"))
                    .withNetworkPool(vmPool), work.resolve("vm").resolve(".templates"), cloneCreate);
            var probe = vm.probe();
            if (!probe.usable()) {
                throw new IllegalStateException("the vm rung is not usable here: " + probe.reason());
            }
        }
        return vm;
    }

    public ProcessDriver process() {
        if (process == null) {
            process = new ProcessDriver(new ProcessDriverConfig(
                    work.resolve("process"),
                    TestingDirectories.cacheDir(),
                    ServiceUser.resolve(ServiceUser.DEFAULT_NAME),
                    processCaps ? Cgroups.detect("palisade") : noCgroups(),
                    Duration.ofSeconds(60)));
        }
        return process;
    }

    /** How process tenants are capped, as the driver's probe says it. */
    public String processCapsDescription() {
        return process().probe().reason();
    }

    public Tenant provisionVm(String name, Plan plan) {
        return provision(vm(), "vm", name, plan);
    }

    public Tenant provisionProcess(String name, Plan plan) {
        return provision(process(), "process", name, plan);
    }

    private Tenant provision(IsolationDriver driver, String rung, String name, Plan plan) {
        String id = "bench-" + name + "-" + HexFormat.of().toHexDigits(RANDOM.nextInt()).substring(0, 6);
        byte[] secret = new byte[18];
        RANDOM.nextBytes(secret);
        TenantCredentials credentials =
                new TenantCredentials("app", "app", HexFormat.of().formatHex(secret));
        long start = System.nanoTime();
        RunningInstance instance = driver.provision(
                new InstanceSpec(id, PostgresVersion.DEFAULT, plan, "app", "app"), credentials, phase -> {});
        Tenant tenant = new Tenant(rung, instance, credentials, (System.nanoTime() - start) / 1_000_000);
        tenants.add(tenant);
        return tenant;
    }

    public void destroy(Tenant tenant) {
        (tenant.rung().equals("vm") ? vm() : process()).destroy(tenant.id());
        tenants.remove(tenant);
    }

    /** A superuser connection to the tenant's server (the vm's management role, the process rung's private socket). */
    public Connection adminConnection(Tenant tenant) throws SQLException {
        if (tenant.rung().equals("vm")) {
            return vm().managementConnection(tenant.id());
        }
        Properties properties = new Properties();
        properties.setProperty("user", PostgresServer.ADMIN_ROLE);
        properties.setProperty("socketFactory", "org.newsclub.net.unix.AFUNIXSocketFactory$FactoryArg");
        properties.setProperty("socketFactoryArg", PostgresServer.socketDirFor(tenant.id())
                .resolve(".s.PGSQL." + tenant.instance().endpoint().port()).toString());
        properties.setProperty("sslmode", "disable");
        properties.setProperty("connectTimeout", "10");
        return DriverManager.getConnection("jdbc:postgresql://localhost/app", properties);
    }

    /** Runs one statement as the superuser, e.g. {@code GRANT pg_checkpoint TO app}. */
    public void adminExecute(Tenant tenant, String sql) throws SQLException {
        try (Connection connection = adminConnection(tenant);
                Statement statement = connection.createStatement()) {
            statement.execute(sql);
        }
    }

    @Override
    public void close() {
        for (Tenant tenant : List.copyOf(tenants)) {
            try {
                destroy(tenant);
            } catch (RuntimeException e) {
                System.err.println("bench: cannot destroy " + tenant + ": " + e.getMessage());
            }
        }
        for (IsolationDriver driver : new IsolationDriver[] {vm, process}) {
            if (driver == null) {
                continue;
            }
            try {
                for (String id : driver.listInstances()) {
                    driver.destroy(id);
                }
                driver.close();
            } catch (RuntimeException e) {
                System.err.println("bench: cannot clean up the " + driver.name() + " driver: " + e.getMessage());
            }
        }
        TestingDirectories.deleteRecursively(work);
    }

    /** A {@link Cgroups} in NONE mode, for the uncapped shared-machine baseline. */
    private static Cgroups noCgroups() {
        return Cgroups.none("uncapped baseline (benchmark)");
    }
}
