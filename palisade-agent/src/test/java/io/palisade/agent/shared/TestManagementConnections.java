package io.palisade.agent.shared;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.palisade.spi.InstanceSpec;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.TenantCredentials;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Management connections of a shared server are reused between operations, and survive the server's crash. */
class TestManagementConnections {
    @Test
    void createsReuseManagementConnectionsAndWorkAgainAfterACrash() {
        try (SharedRungFixture fixture = new SharedRungFixture()) {
            SharedRungDriver schema = new SharedRungDriver(fixture.pool, TenantLayout.SCHEMA);
            schema.provision(spec("first"), credentials(), ProgressListener.NONE);
            SharedServer server = fixture.pool.serversForTests().getFirst();
            long before = sessions(server);
            int creates = 20;
            for (int i = 0; i < creates; i++) {
                schema.provision(spec("tenant-" + i), credentials(), ProgressListener.NONE);
            }
            assertThat(sessions(server) - before).as("management sessions opened by %d creates", creates)
                    .isLessThanOrEqualTo(2);

            // the kept connections die with the postmaster; the next operations must not use them
            long pid = server.pid();
            fixture.pool.crash(server.name());
            await().atMost(Duration.ofSeconds(60)).until(() -> server.isAlive() && server.pid() != pid);
            schema.provision(spec("after-crash"), credentials(), ProgressListener.NONE);
            assertThat(schema.isRunning("after-crash")).isTrue();
            assertThat(schema.isRunning("tenant-0")).isTrue();

            for (String id : schema.listInstances()) {
                schema.destroy(id);
            }
            fixture.assertNothingLeft("after-crash");
        }
    }

    /** Sessions ever established to the shared database, where a schema tenant is created. */
    private static long sessions(SharedServer server) {
        return SharedRungFixture.count(server, "postgres",
                "SELECT sessions FROM pg_stat_database WHERE datname = '" + TenantLayout.SHARED_DATABASE + "'");
    }

    private static InstanceSpec spec(String id) {
        return new InstanceSpec(id, PostgresVersion.DEFAULT, Plan.NANO, "app", "app");
    }

    private static TenantCredentials credentials() {
        return new TenantCredentials("app", "app", "pw-" + System.nanoTime());
    }
}
