package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.palisade.broker.BrokerConfig;
import io.palisade.proxy.ProxyConfig;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class TestServerConfig {
    @Test
    void everyDefaultParsesAndUnsetKeysAreEmpty() {
        ServerConfig config = ServerConfig.from(Map.of());
        assertThat(ConfigKeys.ALL).hasSizeGreaterThan(80);
        for (Setting<?> key : ConfigKeys.ALL) {
            assertThat(config.find(key)).as(key.name()).isEqualTo(key.defaultValue().map(key::parse));
            assertThat(key.description()).as(key.name()).isNotBlank().doesNotContain("\n");
        }
    }

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
        assertThat(config.proxyHostaddr()).contains("127.0.0.1");
        assertThat(config.proxyPublicPort()).isEmpty();
        assertThat(config.quotas()).isEqualTo(io.palisade.api.AccountQuotas.DEFAULTS);
    }

    @Test
    void defaultsAreTheComponentsOwn() {
        ServerConfig config = ServerConfig.from(Map.of());
        assertThat(config.brokerConfig()).isEqualTo(BrokerConfig.defaults());
        Path tls = Path.of("/tmp/tls");
        assertThat(config.proxyConfig(tls)).isEqualTo(ProxyConfig.defaults("db.localhost", tls));
        assertThat(config.backupConfig().maxRateKbps()).isEqualTo(32_768);
    }

    @Test
    void explicitMappings() {
        ServerConfig config = ServerConfig.from(Map.of(
                "server.data-dir", "/var/lib/palisade",
                "server.host-id", "host-7",
                "api.host", "0.0.0.0",
                "api.port", " 9090 ",
                "api.create-wait", "500ms",
                "store.url", "jdbc:postgresql://db:5432/palisade",
                "store.password", "hunter2",
                "agent.start-timeout", "2m",
                "vm.suspend-after", "never",
                "backup.max-rate", "0"));
        assertThat(config.vmSuspendAfter()).isEmpty();
        assertThat(config.dataDir()).isEqualTo(Path.of("/var/lib/palisade"));
        assertThat(config.hostId()).isEqualTo("host-7");
        assertThat(config.apiHost()).isEqualTo("0.0.0.0");
        assertThat(config.apiPort()).isEqualTo(9090);
        assertThat(config.createWait()).isEqualTo(Duration.ofMillis(500));
        assertThat(config.startTimeout()).isEqualTo(Duration.ofMinutes(2));
        assertThat(config.storeUrl()).contains("jdbc:postgresql://db:5432/palisade");
        assertThat(config.backupConfig().maxRateKbps()).isZero();
        assertThat(config.toString()).doesNotContain("hunter2").contains("store.password=***");
    }

    @Test
    void brokerKeysReachTheBrokerConfig() {
        BrokerConfig broker = ServerConfig.from(Map.ofEntries(
                Map.entry("broker.max-rows", "3"),
                Map.entry("broker.max-request-bytes", "2KiB"),
                Map.entry("broker.max-response-bytes", "1048576"),
                Map.entry("broker.statement-timeout", "1500ms"),
                Map.entry("broker.pool-size-per-database", "4"),
                Map.entry("broker.idle-connection-timeout", "1m"),
                Map.entry("broker.connect-timeout", "7s"),
                Map.entry("broker.pool-wait-timeout", "0s"),
                Map.entry("broker.max-concurrent-requests", "11"),
                Map.entry("broker.max-concurrent-requests-per-database", "5"),
                Map.entry("broker.max-websocket-sessions", "13"),
                Map.entry("broker.max-websocket-sessions-per-database", "6"),
                Map.entry("broker.login-timeout", "3s"),
                Map.entry("broker.max-login-message-bytes", "8KiB"),
                Map.entry("broker.max-logins-per-address", "2"))).brokerConfig();
        assertThat(broker).isEqualTo(new BrokerConfig(3, 2048, 1_048_576, Duration.ofMillis(1500), 4,
                Duration.ofMinutes(1), Duration.ofSeconds(7), Duration.ZERO, 11, 5, 13, 6, Duration.ofSeconds(3),
                8192, 2));
    }

    @Test
    void proxyKeysReachTheProxyConfig() {
        Path tls = Path.of("/tmp/tls");
        ProxyConfig proxy = ServerConfig.from(Map.ofEntries(
                Map.entry("proxy.bind-host", "0.0.0.0"),
                Map.entry("proxy.port", "6432"),
                Map.entry("proxy.domain", "db.example.com"),
                Map.entry("proxy.max-connections-per-database", "7"),
                Map.entry("proxy.max-client-connections", "70"),
                Map.entry("proxy.max-unauthenticated-connections", "9"),
                Map.entry("proxy.max-unauthenticated-per-source", "2"),
                Map.entry("proxy.authentication-timeout", "4s"),
                Map.entry("proxy.tls.handshake-timeout", "3s"),
                Map.entry("proxy.startup-timeout", "20s"),
                Map.entry("proxy.idle-timeout", "0"),
                Map.entry("proxy.backend-connect-timeout", "2s"),
                Map.entry("proxy.max-startup-packet-size", "4096"),
                Map.entry("proxy.io-threads", "3"),
                Map.entry("proxy.backend-idle-timeout", "1500ms"),
                Map.entry("proxy.max-idle-backends-per-database", "0"))).proxyConfig(tls);
        assertThat(proxy).isEqualTo(new ProxyConfig("0.0.0.0", 6432, "db.example.com", Optional.empty(),
                Optional.empty(), tls, 7, 70, 9, 2, Duration.ofSeconds(4), Duration.ofSeconds(3),
                Duration.ofSeconds(20), Duration.ZERO, Duration.ofSeconds(2), 4096, 3, Duration.ofMillis(1500), 0));
        ProxyConfig defaults = ServerConfig.from(Map.of()).proxyConfig(tls);
        assertThat(defaults.backendIdleTimeout()).isEqualTo(Duration.ofSeconds(30));
        assertThat(defaults.maxIdleBackendsPerDatabase()).isEqualTo(64);
    }

    @Test
    void vmKeysReachTheVmDriverConfig() {
        var user = io.palisade.testing.TestingDirectories.serviceUser();
        var cgroups = io.palisade.host.Cgroups.none("test");
        var defaults = ServerConfig.from(Map.of("server.data-dir", "/srv/p")).vmDriverConfig(user, cgroups);
        assertThat(defaults).isEqualTo(io.palisade.vmm.VmDriverConfig.defaults(Path.of("/srv/p/vm"),
                Path.of(".cache/guest/current").toAbsolutePath().normalize(), user, cgroups));
        var vm = ServerConfig.from(Map.of(
                "vm.instances-dir", "/srv/vms",
                "vm.accelerator", "tcg",
                "vm.boot-retries", "5",
                "vm.stop-timeout", "0",
                "vm.host-tsc-khz", "-1",
                "vm.qemu-binary", "/opt/qemu/bin/qemu-system-x86_64")).vmDriverConfig(user, cgroups);
        assertThat(vm.instancesDir()).isEqualTo(Path.of("/srv/vms"));
        assertThat(vm.accelerator()).isEqualTo(io.palisade.vmm.VmDriverConfig.AcceleratorMode.TCG);
        assertThat(vm.maxBootRetries()).isEqualTo(5);
        assertThat(vm.stopTimeout()).isZero();
        assertThat(vm.hostTscKhz()).isEqualTo(-1);
        assertThat(vm.qemuBinary()).isEqualTo(Path.of("/opt/qemu/bin/qemu-system-x86_64"));
        assertInvalid("vm.boot-retries", "11", "vm.boot-retries must be an integer from 0 to 10, got '11'");
        assertThatThrownBy(() -> ServerConfig.from(Map.of("vm.network-pool", "10.213.0.1/16")))
                .hasMessageContaining("has host bits set; did you mean 10.213.0.0/16?");
    }

    @Test
    void sharedTimeoutOverrides() {
        ServerConfig config = ServerConfig.from(Map.of(
                "shared.statement-timeout", "5s",
                "shared.idle-in-transaction-timeout", "2m"));
        assertThat(config.sharedStatementTimeout()).contains(Duration.ofSeconds(5));
        assertThat(config.sharedIdleInTransactionTimeout()).contains(Duration.ofMinutes(2));
        assertInvalid("shared.statement-timeout", "500ms", "shared.statement-timeout must be a duration like 500ms, "
                + "30s, 5m, 24h or 7d, at least 1s, got '500ms'");
    }

    @Test
    void invalidValuesFailWithOneReadableLine() {
        assertInvalid("api.port", "http", "api.port must be an integer from 0 to 65535, got 'http'");
        assertInvalid("api.port", "65536", "api.port must be an integer from 0 to 65535, got '65536'");
        assertInvalid("api.create-wait", "soon",
                "api.create-wait must be a duration like 500ms, 30s, 5m, 24h or 7d, positive, got 'soon'");
        assertInvalid("api.create-wait", "0s",
                "api.create-wait must be a duration like 500ms, 30s, 5m, 24h or 7d, positive, got '0s'");
        assertInvalid("backup.storage", "tape", "backup.storage must be one of local, s3, got 'tape'");
        assertInvalid("backup.max-rate", "5", "backup.max-rate must be 0 or an integer from 32 to 1048576, got '5'");
        assertInvalid("store.url", "mysql://x", "store.url must be a jdbc:postgresql: URL, got 'mysql://x'");
        assertInvalid("broker.max-rows", "0", "broker.max-rows must be an integer of at least 1, got '0'");
        assertInvalid("broker.max-request-bytes", "10XB", "broker.max-request-bytes must be a size in bytes like "
                + "65536, 64KiB or 10MiB, from 1KiB to 1GiB, got '10XB'");
        assertInvalid("broker.max-request-bytes", "99999999999999GiB", "broker.max-request-bytes must be a size in "
                + "bytes like 65536, 64KiB or 10MiB, from 1KiB to 1GiB, got '99999999999999GiB'");
        assertInvalid("api.tls.enabled", "yes", "api.tls.enabled must be true or false, got 'yes'");
        assertInvalid("vm.accelerator", "hvf", "vm.accelerator must be one of auto, kvm, tcg, got 'hvf'");
        assertInvalid("vm.suspend-after", "later",
                "vm.suspend-after must be never or a duration like 500ms, 30s, 5m, 24h or 7d, positive, got 'later'");
        assertInvalid("proxy.domain", "DB.Example", "proxy.domain must be a lowercase DNS name such as db.localhost, "
                + "got 'DB.Example'");
        // a secret's value is never repeated
        assertInvalid("metrics.token", "short-secret", "metrics.token must be at least 16 characters long, got a "
                + "value of 12 characters");
    }

    @Test
    void everyTypedKeyRejectsNonsense() {
        List<String> accepted = new ArrayList<>();
        for (Setting<?> key : ConfigKeys.ALL) {
            try {
                key.parse("#nonsense#");
                accepted.add(key.name());
            } catch (PalisadeException e) {
                assertThat(e.errorCode()).isEqualTo(ErrorCode.INVALID_REQUEST);
                assertThat(e.getMessage()).as(key.name()).startsWith(key.name() + " must be ").doesNotContain("\n");
            }
        }
        assertThat(accepted).as("keys that take free text").allSatisfy(name -> assertThat(ConfigKeys.ALL.stream()
                .filter(k -> k.name().equals(name)).findFirst().orElseThrow().type().name())
                .isIn("string", "path"));
    }

    @Test
    void keysThatGoTogether() {
        assertThatThrownBy(() -> ServerConfig.from(Map.of("backup.storage", "s3")))
                .hasMessage("backup.storage=s3 needs backup.s3.bucket");
        assertThatThrownBy(() -> ServerConfig.from(Map.of("proxy.tls.certificate-file", "/etc/cert.pem")))
                .hasMessageStartingWith("proxy.tls.certificate-file and proxy.tls.private-key-file go together");
        assertThatThrownBy(() -> ServerConfig.from(Map.of("api.tls.certificate-file", "/c.pem",
                "api.tls.private-key-file", "/k.pem"))).hasMessageContaining("set api.tls.enabled=true");
    }

    @Test
    void unknownKeysFailWithSuggestion() {
        assertUnknown("api.prot", "unknown configuration key 'api.prot'; did you mean 'api.port'?");
        assertUnknown("API.PORT", "unknown configuration key 'API.PORT'; did you mean 'api.port'?");
        assertUnknown("api.create_wait",
                "unknown configuration key 'api.create_wait'; did you mean 'api.create-wait'?");
        assertUnknown("max-rows", "unknown configuration key 'max-rows'; did you mean 'broker.max-rows'?");
        assertUnknown("brokr.max-row", "unknown configuration key 'brokr.max-row'; did you mean 'broker.max-rows'?");
        assertUnknown("statement-timeout", "unknown configuration key 'statement-timeout'; did you mean "
                + "'broker.statement-timeout' or 'shared.statement-timeout'?");
        assertUnknown("zzz", "unknown configuration key 'zzz'; palisade serve --help-config lists every key");
    }

    private static void assertInvalid(String key, String value, String message) {
        PalisadeException e = catchThrowableOfType(PalisadeException.class,
                () -> ServerConfig.from(Map.of(key, value)));
        assertThat(e).as(key + "=" + value).isNotNull();
        assertThat(e.errorCode()).isEqualTo(ErrorCode.INVALID_REQUEST);
        assertThat(e.getMessage()).isEqualTo(message);
    }

    private static void assertUnknown(String key, String message) {
        assertThatThrownBy(() -> ServerConfig.from(Map.of(key, "1")))
                .isInstanceOf(PalisadeException.class)
                .hasMessage(message);
    }
}
