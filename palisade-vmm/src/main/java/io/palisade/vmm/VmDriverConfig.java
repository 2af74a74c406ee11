package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import io.palisade.spi.PalisadeException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Configuration of the {@code vm} driver.
 *
 * @param instancesDir where each VM keeps its files, one directory per id ({@code vm.instances-dir})
 * @param imageDir the guest image directory, normally {@code <repo>/.cache/guest/current} ({@code vm.image-dir})
 * @param serviceUser the unprivileged user QEMU drops to ({@code -runas})
 * @param cgroups per-VM CPU and memory caps on the QEMU process
 * @param accelerator {@code auto} (KVM where the CPU has vmx/svm and /dev/kvm opens, else TCG), {@code kvm} or
 *     {@code tcg} ({@code vm.accelerator})
 * @param bootTimeout how long one boot may take from QEMU start to PostgreSQL answering ({@code vm.boot-timeout})
 * @param networkPool the per-agent IPv4 pool the /30 veth links come from, e.g. {@code 10.213.0.0/16}
 *     ({@code vm.network-pool})
 * @param hostTscKhz the host TSC frequency passed to TCG guests; 0 reads {@code cpu MHz} from /proc/cpuinfo; -1
 *     passes none (diagnostics only: ~30 % of TCG boots then hang and the watchdog must step in)
 *     ({@code vm.host-tsc-khz})
 * @param qemuBinary the QEMU system emulator ({@code vm.qemu-binary})
 * @param maxBootRetries how often the boot watchdog kills and restarts a guest that hangs ({@code vm.boot-retries})
 * @param stopTimeout how long a clean guest shutdown may take before QEMU is told to quit ({@code vm.stop-timeout})
 * @param restoreTimeout how long the first boot of a restored data directory may take from QEMU start until
 *     PostgreSQL, its recovery ended, accepts connections (WAL replay can take far longer than a boot; the longer of
 *     this and {@code bootTimeout} applies) ({@code vm.restore-timeout})
 */
public record VmDriverConfig(
        Path instancesDir,
        Path imageDir,
        ServiceUser serviceUser,
        Cgroups cgroups,
        AcceleratorMode accelerator,
        Duration bootTimeout,
        String networkPool,
        long hostTscKhz,
        Path qemuBinary,
        int maxBootRetries,
        Duration stopTimeout,
        Duration restoreTimeout) {
    public static final String DEFAULT_NETWORK_POOL = "10.213.0.0/16";
    public static final Duration DEFAULT_BOOT_TIMEOUT = Duration.ofSeconds(90);
    public static final Duration DEFAULT_STOP_TIMEOUT = Duration.ofSeconds(20);
    public static final Path DEFAULT_QEMU = Path.of("/usr/bin/qemu-system-x86_64");
    public static final int DEFAULT_BOOT_RETRIES = 2;
    public static final Duration DEFAULT_RESTORE_TIMEOUT = Duration.ofHours(1);

    /** How the accelerator is chosen. */
    public enum AcceleratorMode {
        AUTO,
        KVM,
        TCG;

        public static AcceleratorMode parse(String value) {
            requireNonNull(value, "value is null");
            return switch (value.strip().toLowerCase(java.util.Locale.ROOT)) {
                case "auto" -> AUTO;
                case "kvm" -> KVM;
                case "tcg" -> TCG;
                default -> throw PalisadeException.invalid(
                        "vm.accelerator must be one of auto, kvm, tcg; got '" + value + "'");
            };
        }
    }

    public VmDriverConfig {
        requireNonNull(instancesDir, "instancesDir is null");
        requireNonNull(imageDir, "imageDir is null");
        requireNonNull(serviceUser, "serviceUser is null");
        requireNonNull(cgroups, "cgroups is null");
        requireNonNull(accelerator, "accelerator is null");
        requireNonNull(bootTimeout, "bootTimeout is null");
        requireNonNull(networkPool, "networkPool is null");
        requireNonNull(qemuBinary, "qemuBinary is null");
        requireNonNull(stopTimeout, "stopTimeout is null");
        requireNonNull(restoreTimeout, "restoreTimeout is null");
        instancesDir = instancesDir.toAbsolutePath().normalize();
        imageDir = imageDir.toAbsolutePath();
        if (bootTimeout.compareTo(Duration.ofSeconds(5)) < 0) {
            throw PalisadeException.invalid("vm.boot-timeout must be at least 5 s, got " + bootTimeout);
        }
        if (stopTimeout.isNegative()) {
            throw PalisadeException.invalid("vm.stop-timeout must not be negative, got " + stopTimeout);
        }
        if (restoreTimeout.compareTo(Duration.ofSeconds(5)) < 0) {
            throw PalisadeException.invalid("vm.restore-timeout must be at least 5 s, got " + restoreTimeout);
        }
        if (hostTscKhz < -1) {
            throw PalisadeException.invalid("vm.host-tsc-khz must be a rate in kHz, 0 (auto) or -1 (none), got "
                    + hostTscKhz);
        }
        if (maxBootRetries < 0 || maxBootRetries > 10) {
            throw PalisadeException.invalid("vm.boot-retries must be between 0 and 10, got " + maxBootRetries);
        }
        NetworkPool.parse(networkPool); // validates the CIDR
    }

    /**
     * The defaults: auto accelerator, 90 s boot timeout, pool 10.213.0.0/16, TSC from /proc/cpuinfo, 2 retries, 1 h
     * restore timeout.
     */
    public static VmDriverConfig defaults(Path instancesDir, Path imageDir, ServiceUser serviceUser, Cgroups cgroups) {
        return new VmDriverConfig(
                instancesDir,
                imageDir,
                serviceUser,
                cgroups,
                AcceleratorMode.AUTO,
                DEFAULT_BOOT_TIMEOUT,
                DEFAULT_NETWORK_POOL,
                0,
                DEFAULT_QEMU,
                DEFAULT_BOOT_RETRIES,
                DEFAULT_STOP_TIMEOUT,
                DEFAULT_RESTORE_TIMEOUT);
    }

    public VmDriverConfig withAccelerator(AcceleratorMode mode) {
        return new VmDriverConfig(instancesDir, imageDir, serviceUser, cgroups, mode, bootTimeout, networkPool,
                hostTscKhz, qemuBinary, maxBootRetries, stopTimeout, restoreTimeout);
    }

    public VmDriverConfig withNetworkPool(String pool) {
        return new VmDriverConfig(instancesDir, imageDir, serviceUser, cgroups, accelerator, bootTimeout, pool,
                hostTscKhz, qemuBinary, maxBootRetries, stopTimeout, restoreTimeout);
    }

    public VmDriverConfig withBootTimeout(Duration timeout) {
        return new VmDriverConfig(instancesDir, imageDir, serviceUser, cgroups, accelerator, timeout, networkPool,
                hostTscKhz, qemuBinary, maxBootRetries, stopTimeout, restoreTimeout);
    }

    public VmDriverConfig withHostTscKhz(long khz) {
        return new VmDriverConfig(instancesDir, imageDir, serviceUser, cgroups, accelerator, bootTimeout, networkPool,
                khz, qemuBinary, maxBootRetries, stopTimeout, restoreTimeout);
    }

    public VmDriverConfig withQemuBinary(Path binary) {
        return new VmDriverConfig(instancesDir, imageDir, serviceUser, cgroups, accelerator, bootTimeout, networkPool,
                hostTscKhz, binary, maxBootRetries, stopTimeout, restoreTimeout);
    }

    public VmDriverConfig withBootRetries(int retries) {
        return new VmDriverConfig(instancesDir, imageDir, serviceUser, cgroups, accelerator, bootTimeout, networkPool,
                hostTscKhz, qemuBinary, retries, stopTimeout, restoreTimeout);
    }

    public VmDriverConfig withStopTimeout(Duration timeout) {
        return new VmDriverConfig(instancesDir, imageDir, serviceUser, cgroups, accelerator, bootTimeout, networkPool,
                hostTscKhz, qemuBinary, maxBootRetries, timeout, restoreTimeout);
    }

    public VmDriverConfig withRestoreTimeout(Duration timeout) {
        return new VmDriverConfig(instancesDir, imageDir, serviceUser, cgroups, accelerator, bootTimeout, networkPool,
                hostTscKhz, qemuBinary, maxBootRetries, stopTimeout, timeout);
    }
}
