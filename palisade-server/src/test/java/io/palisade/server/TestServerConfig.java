package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TestServerConfig {
    @Test
    void defaults() {
        ServerConfig config = ServerConfig.from(Map.of());
        assertThat(config.apiHost()).isEqualTo("127.0.0.1");
        assertThat(config.apiPort()).isEqualTo(8080);
        assertThat(config.createWait()).isEqualTo(Duration.ofSeconds(120));
        assertThat(config.startTimeout()).isEqualTo(Duration.ofSeconds(120));
        assertThat(config.storeUrl()).isEmpty();
        assertThat(config.dataDir()).isEqualTo(Path.of(".palisade/data").toAbsolutePath().normalize());
        assertThat(config.serviceUser()).isEqualTo("palisade");
        assertThat(config.cgroupParent()).isEqualTo("palisade");
        assertThat(config.vmSuspendAfter()).contains(Duration.ofMinutes(5));
        assertThat(config.vmAccelerator()).isEqualTo("auto");
        assertThat(config.stopInstancesOnExit()).isTrue();
        assertThat(config.sharedStatementTimeout()).isEmpty();
        assertThat(config.sharedIdleInTransactionTimeout()).isEmpty();
    }

    @Test
    void explicitMappings() {
        ServerConfig config = ServerConfig.from(Map.of(
                "server.data-dir", "/var/lib/palisade",
                "server.host-id", "host-7",
                "api.host", "0.0.0.0",
                "api.port", "9090",
                "api.create-wait", "500ms",
                "store.url", "jdbc:postgresql://db:5432/palisade",
                "store.password", "hunter2",
                "agent.start-timeout", "2m",
                "vm.suspend-after", "never"));
        assertThat(config.vmSuspendAfter()).isEmpty();
        assertThat(config.dataDir()).isEqualTo(Path.of("/var/lib/palisade"));
        assertThat(config.hostId()).isEqualTo("host-7");
        assertThat(config.apiHost()).isEqualTo("0.0.0.0");
        assertThat(config.apiPort()).isEqualTo(9090);
        assertThat(config.createWait()).isEqualTo(Duration.ofMillis(500));
        assertThat(config.startTimeout()).isEqualTo(Duration.ofMinutes(2));
        assertThat(config.storeUrl()).contains("jdbc:postgresql://db:5432/palisade");
        assertThat(config.toString()).doesNotContain("hunter2").contains("store.password=***");
    }

    @Test
    void sharedTimeoutOverrides() {
        ServerConfig config = ServerConfig.from(Map.of(
                "shared.statement-timeout", "5s",
                "shared.idle-in-transaction-timeout", "2m"));
        assertThat(config.sharedStatementTimeout()).contains(Duration.ofSeconds(5));
        assertThat(config.sharedIdleInTransactionTimeout()).contains(Duration.ofMinutes(2));
        assertThatThrownBy(() -> ServerConfig.from(Map.of("shared.statement-timeout", "0s")))
                .hasMessageContaining("shared.statement-timeout must be positive");
    }

    @Test
    void unknownKeysFailWithSuggestion() {
        assertThatThrownBy(() -> ServerConfig.from(Map.of("api.prot", "1")))
                .isInstanceOf(PalisadeException.class)
                .hasMessage("unknown configuration key 'api.prot'; did you mean 'api.port'?");
        assertThatThrownBy(() -> ServerConfig.from(Map.of("zzz", "1")))
                .hasMessage("unknown configuration key 'zzz'");
    }

    @Test
    void backupDefaults() {
        ServerConfig config = ServerConfig.from(Map.of("server.data-dir", "/tmp/x"));
        assertThat(config.backupEnabled()).isTrue();
        assertThat(config.backupStorage()).isEqualTo("local");
        assertThat(config.backupLocalDir()).isEqualTo(java.nio.file.Path.of("/tmp/x/backups"));
        assertThat(config.backupConfig().retention()).isEqualTo(java.time.Duration.ofDays(7));
        assertThat(config.backupConfig().baseBackupInterval()).isEqualTo(java.time.Duration.ofHours(24));
        assertThat(config.backupConfig().flushInterval()).isEqualTo(java.time.Duration.ofMillis(500));
    }

    @Test
    void invalidValuesFail() {
        assertThatThrownBy(() -> ServerConfig.from(Map.of("api.port", "http")))
                .hasMessageContaining("api.port must be an integer");
        assertThatThrownBy(() -> ServerConfig.from(Map.of("api.create-wait", "soon")))
                .hasMessageContaining("must be a duration like 500ms, 30s, 5m, 24h or 7d");
        assertThatThrownBy(() -> ServerConfig.from(Map.of("backup.storage", "tape")))
                .hasMessageContaining("backup.storage must be local or s3");
        assertThatThrownBy(() -> ServerConfig.from(Map.of("backup.storage", "s3")))
                .hasMessageContaining("backup.s3.bucket");
        assertThatThrownBy(() -> ServerConfig.from(Map.of("backup.max-rate", "5")))
                .hasMessageContaining("backup.max-rate");
        assertThatThrownBy(() -> ServerConfig.from(Map.of("store.url", "mysql://x")))
                .hasMessageContaining("jdbc:postgresql:");
    }
}
