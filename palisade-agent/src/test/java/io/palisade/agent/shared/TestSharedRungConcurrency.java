package io.palisade.agent.shared;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.TenantCredentials;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Many tenants of one shared server at once: creates and deletes at the same time all succeed (the statements that
 * change a row every tenant shares — the ACL of the shared database, which every schema tenant is granted CONNECT on —
 * must not meet PostgreSQL's "tuple concurrently updated"), and the reconciler asking for every tenant at once finds
 * every one running instead of exhausting the server's connections.
 */
class TestSharedRungConcurrency {
    private static final int THREADS = 4;
    private static final int TENANTS_PER_THREAD = 6;

    @Test
    void concurrentCreatesAndDeletesOnOneServerAllSucceed() throws Exception {
        try (SharedRungFixture fixture = new SharedRungFixture()) {
            SharedRungDriver schema = new SharedRungDriver(fixture.pool, TenantLayout.SCHEMA);
            SharedRungDriver database = new SharedRungDriver(fixture.pool, TenantLayout.DATABASE);
            schema.provision(spec("warm"), credentials(), ProgressListener.NONE); // the server exists before the race
            List<Future<?>> work = new ArrayList<>();
            try (ExecutorService threads = Executors.newFixedThreadPool(THREADS)) {
                for (int t = 0; t < THREADS; t++) {
                    int thread = t;
                    work.add(threads.submit(() -> {
                        List<String> ids = new ArrayList<>();
                        for (int i = 0; i < TENANTS_PER_THREAD; i++) {
                            String id = "c" + thread + "-" + i;
                            // mostly schema tenants: they share the ACL row of the shared database
                            (i % 3 == 2 ? database : schema).provision(spec(id), credentials(), ProgressListener.NONE);
                            ids.add(id);
                        }
                        for (String id : ids) {
                            schema.destroy(id);
                            database.destroy(id);
                        }
                        return null;
                    }));
                }
                for (Future<?> f : work) {
                    f.get();
                }
            }
            assertThat(schema.listInstances()).containsExactly("warm");
            assertThat(database.listInstances()).isEmpty();
            schema.destroy("warm");
            fixture.assertNothingLeft("warm");
        }
    }

    @Test
    void checkingEveryTenantAtOnceCostsTheServerAFewSessionsNotOneEach() throws Exception {
        int tenants = 60;
        try (SharedRungFixture fixture = new SharedRungFixture(20)) {
            SharedRungDriver schema = new SharedRungDriver(fixture.pool, TenantLayout.SCHEMA);
            for (int i = 0; i < tenants; i++) {
                schema.provision(spec("run-" + i), credentials(), ProgressListener.NONE);
            }
            SharedServer server = fixture.pool.serversForTests().getFirst();
            long sessionsBefore = sessions(server);
            List<Future<Boolean>> checks = new ArrayList<>();
            // as the reconciler does: one thread per tenant, all at once, more tenants than the server has connections
            try (ExecutorService threads = Executors.newThreadPerTaskExecutor(Thread.ofPlatform().factory())) {
                for (int i = 0; i < tenants; i++) {
                    String id = "run-" + i;
                    checks.add(threads.submit(() -> schema.isRunning(id)));
                }
            }
            for (Future<Boolean> check : checks) {
                assertThat(check.get()).isTrue();
            }
            // the pool's monitor connects about once a second, this test once to count
            assertThat(sessions(server) - sessionsBefore).as("sessions opened on the server by %d checks", tenants)
                    .isLessThan(10);
            schema.stop("run-0");
            assertThat(schema.isRunning("run-0")).as("a stopped tenant is seen stopped at once").isFalse();
            schema.start(spec("run-0"), ProgressListener.NONE);
            assertThat(schema.isRunning("run-0")).isTrue();
            for (int i = 0; i < tenants; i++) {
                schema.destroy("run-" + i);
            }
        }
    }

    @Test
    void stoppingAndStartingEveryTenantAtOnceSucceeds() throws Exception {
        int tenants = 60;
        try (SharedRungFixture fixture = new SharedRungFixture(20)) {
            SharedRungDriver database = new SharedRungDriver(fixture.pool, TenantLayout.DATABASE);
            SharedRungDriver schema = new SharedRungDriver(fixture.pool, TenantLayout.SCHEMA);
            for (int i = 0; i < tenants; i++) {
                (i % 2 == 0 ? schema : database).provision(spec("run-" + i), credentials(), ProgressListener.NONE);
            }
            // as palisade's shutdown and the reconciler after a restart do: every tenant at once, on its own thread
            allAtOnce(tenants, i -> (i % 2 == 0 ? schema : database).stop("run-" + i));
            for (int i = 0; i < tenants; i++) {
                assertThat((i % 2 == 0 ? schema : database).isRunning("run-" + i)).isFalse();
            }
            allAtOnce(tenants, i -> (i % 2 == 0 ? schema : database).start(spec("run-" + i), ProgressListener.NONE));
            for (int i = 0; i < tenants; i++) {
                assertThat((i % 2 == 0 ? schema : database).isRunning("run-" + i)).isTrue();
            }
            allAtOnce(tenants, i -> (i % 2 == 0 ? schema : database).destroy("run-" + i));
            fixture.assertNothingLeft("run-0");
        }
    }

    private static void allAtOnce(int count, java.util.function.IntConsumer work) throws Exception {
        List<Future<?>> done = new ArrayList<>();
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < count; i++) {
                int index = i;
                done.add(threads.submit(() -> work.accept(index)));
            }
        }
        for (Future<?> f : done) {
            f.get();
        }
    }

    /** Sessions ever established to the server's {@code postgres} database (management connections). */
    private static long sessions(SharedServer server) {
        return SharedRungFixture.count(server, "postgres",
                "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'");
    }

    private static InstanceSpec spec(String id) {
        return new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app");
    }

    private static TenantCredentials credentials() {
        return new TenantCredentials("app", "app", "pw-" + System.nanoTime());
    }
}
