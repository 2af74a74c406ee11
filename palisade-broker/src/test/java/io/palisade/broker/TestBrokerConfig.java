package io.palisade.broker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class TestBrokerConfig {
    @Test
    void defaultsAreNeons() {
        BrokerConfig config = BrokerConfig.defaults();
        assertThat(config.maxRows()).isEqualTo(10_000);
        assertThat(config.maxRequestBytes()).isEqualTo(10 * 1024 * 1024);
        assertThat(config.maxResponseBytes()).isEqualTo(10 * 1024 * 1024);
        assertThat(config.statementTimeout()).isEqualTo(Duration.ofSeconds(30));
        assertThat(config.poolSizePerDatabase()).isEqualTo(20);
        assertThat(config.idleConnectionTimeout()).isEqualTo(Duration.ofMinutes(5));
        assertThat(config.connectTimeout()).isEqualTo(Duration.ofSeconds(30));
        assertThat(config.poolWaitTimeout()).isEqualTo(Duration.ofSeconds(10));
        assertThat(config.loginTimeout()).isEqualTo(Duration.ofSeconds(10));
        assertThat(config.maxLoginMessageBytes()).isEqualTo(64 * 1024);
    }

    @Test
    void explicitValues() {
        BrokerConfig config = BrokerConfig.defaults()
                .withMaxRows(5)
                .withMaxRequestBytes(2048)
                .withMaxResponseBytes(4096)
                .withStatementTimeout(Duration.ofMillis(250))
                .withPoolSizePerDatabase(3)
                .withIdleConnectionTimeout(Duration.ofSeconds(9))
                .withPoolWaitTimeout(Duration.ZERO)
                .withConcurrentRequests(7, 2)
                .withWebSocketSessions(11, 3)
                .withLogin(Duration.ofSeconds(4), 4096)
                .withLoginsPerAddress(5);
        assertThat(config).isEqualTo(new BrokerConfig(5, 2048, 4096, Duration.ofMillis(250), 3,
                Duration.ofSeconds(9), Duration.ofSeconds(30), Duration.ZERO, 7, 2, 11, 3, Duration.ofSeconds(4),
                4096, 5));
    }

    @Test
    void rejectsNonsense() {
        assertThatThrownBy(() -> BrokerConfig.defaults().withMaxRows(0))
                .hasMessageContaining("broker.max-rows");
        assertThatThrownBy(() -> BrokerConfig.defaults().withPoolSizePerDatabase(0))
                .hasMessageContaining("broker.pool-size-per-database");
        assertThatThrownBy(() -> BrokerConfig.defaults().withStatementTimeout(Duration.ZERO))
                .hasMessageContaining("broker.statement-timeout");
        assertThatThrownBy(() -> BrokerConfig.defaults().withMaxRequestBytes(10))
                .hasMessageContaining("broker.max-request-bytes");
        assertThatThrownBy(() -> BrokerConfig.defaults().withLogin(Duration.ZERO, 4096))
                .hasMessageContaining("broker.login-timeout");
        assertThatThrownBy(() -> BrokerConfig.defaults().withWebSocketSessions(0, 1))
                .hasMessageContaining("broker.max-websocket-sessions");
    }
}
