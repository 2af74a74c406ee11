package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestNetworkPool {
    @TempDir
    Path dir;

    @Test
    void slotsAreSlash30sOfThePool() {
        NetworkPool pool = new NetworkPool("10.213.0.0/16", dir);
        assertThat(pool.cidr().slots()).isEqualTo(16_384);
        NetworkPool.Slot first = pool.allocate("db-a");
        assertThat(first.index()).isZero();
        assertThat(first.cidr()).isEqualTo("10.213.0.0/30");
        assertThat(first.hostAddress()).isEqualTo("10.213.0.1");
        assertThat(first.namespaceAddress()).isEqualTo("10.213.0.2");
        NetworkPool.Slot second = pool.allocate("db-b");
        assertThat(second.namespaceAddress()).isEqualTo("10.213.0.6");
        assertThat(pool.slot(16_383).namespaceAddress()).isEqualTo("10.213.255.254");
        assertThat(pool.allocate("db-a")).as("stable per id").isEqualTo(first);
    }

    @Test
    void allocationsSurviveARestartAndAreFreed() {
        NetworkPool pool = new NetworkPool("10.213.0.0/16", dir);
        pool.allocate("db-a");
        NetworkPool.Slot b = pool.allocate("db-b");
        NetworkPool reloaded = new NetworkPool("10.213.0.0/16", dir);
        assertThat(reloaded.find("db-b")).contains(b);
        reloaded.release("db-a");
        assertThat(Files.exists(dir.resolve("0"))).isFalse();
        assertThat(reloaded.allocate("db-c").index()).as("lowest free slot is reused").isZero();
        reloaded.release("db-unknown"); // no-op
        assertThat(new NetworkPool("10.213.0.0/16", dir).allocations()).containsOnlyKeys("db-b", "db-c");
    }

    @Test
    void exhaustionIsACapacityError() {
        NetworkPool pool = new NetworkPool("10.213.0.0/29", dir);
        pool.allocate("db-a");
        pool.allocate("db-b");
        assertThatThrownBy(() -> pool.allocate("db-c"))
                .isInstanceOfSatisfying(PalisadeException.class,
                        e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CAPACITY_EXHAUSTED))
                .hasMessageContaining("no free /30");
    }

    @Test
    void badPoolsAreRejectedWithAHint() {
        assertThatThrownBy(() -> NetworkPool.parse("10.213.0.1/16")).hasMessageContaining("did you mean 10.213.0.0/16");
        assertThatThrownBy(() -> NetworkPool.parse("10.213.0.0")).hasMessageContaining("CIDR");
        assertThatThrownBy(() -> NetworkPool.parse("10.213.0.0/31")).hasMessageContaining("/30");
        assertThatThrownBy(() -> NetworkPool.parse("172.31.0.0/16")).hasMessageContaining("overlaps");
        assertThatThrownBy(() -> NetworkPool.parse("10.300.0.0/16")).hasMessageContaining("IPv4");
        assertThat(NetworkPool.parse("10.213.0.0/16").contains("10.213.7.2")).isTrue();
        assertThat(NetworkPool.parse("10.213.0.0/16").contains("10.214.0.2")).isFalse();
    }
}
