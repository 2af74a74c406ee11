package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.vmm.VmDriverConfig.AcceleratorMode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which accelerator QEMU uses and why. KVM only when the host CPU announces hardware virtualisation ({@code vmx} or
 * {@code svm}) and {@code /dev/kvm} opens and is not PVM ({@code kvm_pvm}, a software hypervisor that cannot run stock
 * guest kernels); otherwise TCG. Immutable.
 */
public record Accelerator(Kind kind, String reason) {
    public enum Kind {
        KVM,
        TCG;

        public String slug() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private static final Pattern CPU_MHZ = Pattern.compile("(?m)^cpu MHz\\s*:\\s*([0-9.]+)");

    public Accelerator {
        requireNonNull(kind, "kind is null");
        requireNonNull(reason, "reason is null");
    }

    /** The QEMU arguments that select this accelerator and the CPU model. */
    public List<String> qemuArguments() {
        return switch (kind) {
            case KVM -> List.of("-accel", "kvm", "-cpu", "host");
            // a 64 MiB translation cache keeps an idle guest's RSS small (the default grows towards 1 GiB)
            case TCG -> List.of("-accel", "tcg,thread=multi,tb-size=64", "-cpu", "max");
        };
    }

    public static Accelerator probe(AcceleratorMode mode) {
        return probe(mode, Path.of("/proc/cpuinfo"), Path.of("/dev/kvm"), Path.of("/sys/module"));
    }

    static Accelerator probe(AcceleratorMode mode, Path cpuinfo, Path kvmDevice, Path sysModule) {
        if (mode == AcceleratorMode.TCG) {
            return new Accelerator(Kind.TCG, "TCG: vm.accelerator=tcg (software emulation, slower guests)");
        }
        String kvmProblem = kvmProblem(cpuinfo, kvmDevice, sysModule);
        if (kvmProblem == null) {
            return new Accelerator(Kind.KVM, "KVM: the CPU has hardware virtualisation and " + kvmDevice + " opens");
        }
        if (mode == AcceleratorMode.KVM) {
            // the operator insists; QEMU will fail loudly if it really cannot
            return new Accelerator(Kind.KVM, "KVM: vm.accelerator=kvm although " + kvmProblem);
        }
        return new Accelerator(Kind.TCG, "TCG: " + kvmProblem + " (software emulation, slower guests)");
    }

    /** Why KVM cannot be used, or null if it can. */
    static String kvmProblem(Path cpuinfo, Path kvmDevice, Path sysModule) {
        String flags;
        try {
            flags = Files.readString(cpuinfo);
        } catch (IOException e) {
            return "cannot read " + cpuinfo;
        }
        if (!Pattern.compile("(?m)^flags\\s*:.*\\b(vmx|svm)\\b").matcher(flags).find()) {
            return "the host CPU shows no vmx/svm in " + cpuinfo;
        }
        if (Files.isDirectory(sysModule.resolve("kvm_pvm"))) {
            return kvmDevice + " is PVM (kernel module kvm_pvm), which cannot run stock guest kernels";
        }
        if (!Files.exists(kvmDevice)) {
            return kvmDevice + " does not exist";
        }
        try (RandomAccessFile ignored = new RandomAccessFile(kvmDevice.toFile(), "rw")) {
            return null;
        } catch (IOException e) {
            return kvmDevice + " does not open: " + e.getMessage();
        }
    }

    /** The host TSC rate in kHz from {@code cpu MHz} in /proc/cpuinfo, or 0 if it cannot be read. */
    public static long hostTscKhz(Path cpuinfo) {
        try {
            Matcher matcher = CPU_MHZ.matcher(Files.readString(cpuinfo));
            if (matcher.find()) {
                return Math.round(Double.parseDouble(matcher.group(1)) * 1000);
            }
        } catch (IOException | NumberFormatException e) {
            // fall through
        }
        return 0;
    }
}
