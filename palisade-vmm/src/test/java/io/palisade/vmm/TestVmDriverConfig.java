package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import io.palisade.vmm.VmDriverConfig.AcceleratorMode;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class TestVmDriverConfig {
    private static VmDriverConfig defaults() {
        return VmDriverConfig.defaults(Path.of("/var/lib/palisade/vm"), Path.of("/repo/.cache/guest/current"),
                ServiceUser.resolve(ServiceUser.DEFAULT_NAME), Cgroups.detect("palisade"));
    }

    @Test
    void defaultValues() {
        VmDriverConfig config = defaults();
        assertThat(config.accelerator()).isEqualTo(AcceleratorMode.AUTO);
        assertThat(config.networkPool()).isEqualTo("10.213.0.0/16");
        assertThat(config.bootTimeout()).isEqualTo(Duration.ofSeconds(90));
        assertThat(config.stopTimeout()).isEqualTo(Duration.ofSeconds(20));
        assertThat(config.hostTscKhz()).isZero();
        assertThat(config.maxBootRetries()).isEqualTo(2);
        assertThat(config.qemuBinary()).isEqualTo(Path.of("/usr/bin/qemu-system-x86_64"));
        assertThat(config.restoreTimeout()).isEqualTo(Duration.ofHours(1));
    }

    @Test
    void explicitValues() {
        VmDriverConfig config = defaults()
                .withAccelerator(AcceleratorMode.parse("TCG"))
                .withNetworkPool("10.99.0.0/20")
                .withBootTimeout(Duration.ofSeconds(30))
                .withHostTscKhz(3_000_000)
                .withRestoreTimeout(Duration.ofMinutes(10));
        assertThat(config.accelerator()).isEqualTo(AcceleratorMode.TCG);
        assertThat(config.networkPool()).isEqualTo("10.99.0.0/20");
        assertThat(config.bootTimeout()).isEqualTo(Duration.ofSeconds(30));
        assertThat(config.hostTscKhz()).isEqualTo(3_000_000);
        assertThat(config.restoreTimeout()).isEqualTo(Duration.ofMinutes(10));
    }

    @Test
    void invalidValues() {
        assertThatThrownBy(() -> AcceleratorMode.parse("hvf")).hasMessageContaining("auto, kvm, tcg");
        assertThatThrownBy(() -> defaults().withNetworkPool("10.99.0.1/16")).hasMessageContaining("did you mean");
        assertThatThrownBy(() -> defaults().withBootTimeout(Duration.ofSeconds(1))).hasMessageContaining("at least");
        assertThatThrownBy(() -> defaults().withHostTscKhz(-2)).hasMessageContaining("0 (auto) or -1 (none)");
        assertThatThrownBy(() -> defaults().withRestoreTimeout(Duration.ofSeconds(1)))
                .hasMessageContaining("vm.restore-timeout");
    }
}
