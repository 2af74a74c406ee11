package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.ServiceUser;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.PalisadeException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Whether the vm rung can run here (QEMU installed, running as root, a guest image) and whether it should be the
 * default (only with KVM). A usable outcome is cached; an unusable one is recomputed on every call (e.g. until the
 * guest image has been built); each distinct outcome is logged once. Thread-safe (volatile fields; a race computes
 * the same outcome twice).
 */
final class VmProbe {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);

    private final VmDriverConfig config;
    private final Accelerator accelerator;
    private volatile DriverProbe probe;
    private volatile String lastProbeReason;

    VmProbe(VmDriverConfig config, Accelerator accelerator) {
        this.config = requireNonNull(config, "config is null");
        this.accelerator = requireNonNull(accelerator, "accelerator is null");
    }

    DriverProbe probe(String name) {
        DriverProbe cached = probe;
        if (cached != null) {
            return cached;
        }
        List<String> problems = new ArrayList<>();
        if (!Files.isExecutable(config.qemuBinary())) {
            problems.add(
                    "QEMU is not installed (" + config.qemuBinary() + " missing; apt-get install qemu-system-x86)");
        }
        if (ServiceUser.currentUid() != 0) {
            problems.add("palisade is not running as root, which network namespaces, taps and cgroups need");
        }
        try {
            GuestImage.load(config.imageDir());
        } catch (PalisadeException e) {
            problems.add(e.getMessage());
        }
        boolean usable = problems.isEmpty();
        boolean preferred = usable && accelerator.kind() == Accelerator.Kind.KVM;
        String reason = accelerator.reason()
                + (usable ? "" : "; unusable: " + String.join("; ", problems))
                + (usable && !preferred ? "; not the default rung without KVM" : "");
        DriverProbe result = new DriverProbe(name, usable, preferred, accelerator.kind().slug(), reason);
        if (!reason.equals(lastProbeReason)) {
            lastProbeReason = reason; // log each distinct outcome once
            log.info("vm driver: usable={} default={} accelerator={}: {}", usable, preferred,
                    accelerator.kind().slug(), reason);
        }
        if (usable) {
            probe = result; // an unusable probe is recomputed, e.g. once the guest image has been built
        }
        return result;
    }
}
