package io.palisade.spi;

import static java.util.Objects.requireNonNull;

/**
 * Whether a driver can run on this host, whether it should be the default rung, and why. {@code accelerator} names what
 * backs the isolation (for example {@code kvm}, {@code tcg}, {@code cgroup-v1}).
 */
public record DriverProbe(String driver, boolean usable, boolean preferredDefault, String accelerator, String reason) {
    public DriverProbe {
        requireNonNull(driver, "driver is null");
        requireNonNull(accelerator, "accelerator is null");
        requireNonNull(reason, "reason is null");
    }
}
