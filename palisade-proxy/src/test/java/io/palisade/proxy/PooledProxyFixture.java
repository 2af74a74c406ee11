package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** The set-up and clean-up the proxy's backend-pool tests share. Stateless. */
final class PooledProxyFixture {
    private PooledProxyFixture() {}

    /**
     * After each test: empties the pool of every database the test class uses, then checks that nothing leaked and
     * that every backend connection, parked ones included, is closed.
     */
    static void emptyThePool(PostgresProxy proxy, List<String> databaseIds) {
        for (String id : databaseIds) {
            proxy.evictIdleBackends(id);
        }
        TestPostgresProxyIntegration.assertNothingLeaked(proxy);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
                assertThat(proxy.openBackendConnections()).as("parked connections closed").isZero());
    }

    /** After all tests: closes the proxy, then the servers (which check that nothing is left on them), then the dir. */
    static void closeAll(PostgresProxy proxy, Path workDir, TestingPostgres... servers) {
        if (proxy != null) {
            proxy.close();
        }
        for (TestingPostgres server : servers) {
            if (server != null) {
                server.close();
            }
        }
        TestingDirectories.deleteRecursively(workDir);
    }
}
