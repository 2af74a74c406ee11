package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.vmm.VmDriverConfig.AcceleratorMode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestAccelerator {
    @TempDir
    Path dir;

    private Path cpuinfo(String flags) throws IOException {
        return Files.writeString(dir.resolve("cpuinfo"),
                "processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.122\nflags\t\t: fpu " + flags + " sse2\n");
    }

    @Test
    void noVirtualisationFlagsMeansTcg() throws IOException {
        Path kvm = Files.createFile(dir.resolve("kvm"));
        Accelerator accelerator = Accelerator.probe(AcceleratorMode.AUTO, cpuinfo("vme pae"), kvm, dir.resolve("sys"));
        assertThat(accelerator.kind()).isEqualTo(Accelerator.Kind.TCG);
        assertThat(accelerator.reason()).contains("no vmx/svm");
        assertThat(accelerator.qemuArguments()).contains("tcg,thread=multi,tb-size=64", "max");
    }

    @Test
    void pvmIsNotKvm() throws IOException {
        Path kvm = Files.createFile(dir.resolve("kvm"));
        Files.createDirectories(dir.resolve("sys/kvm_pvm"));
        Accelerator accelerator = Accelerator.probe(AcceleratorMode.AUTO, cpuinfo("svm"), kvm, dir.resolve("sys"));
        assertThat(accelerator.kind()).isEqualTo(Accelerator.Kind.TCG);
        assertThat(accelerator.reason()).contains("kvm_pvm");
    }

    @Test
    void realKvmIsUsed() throws IOException {
        Path kvm = Files.createFile(dir.resolve("kvm"));
        Accelerator accelerator = Accelerator.probe(AcceleratorMode.AUTO, cpuinfo("vmx"), kvm, dir.resolve("sys"));
        assertThat(accelerator.kind()).isEqualTo(Accelerator.Kind.KVM);
        assertThat(accelerator.qemuArguments()).containsExactly("-accel", "kvm", "-cpu", "host");
        assertThat(Accelerator.probe(AcceleratorMode.AUTO, cpuinfo("vmx"), dir.resolve("missing"), dir).kind())
                .isEqualTo(Accelerator.Kind.TCG);
    }

    @Test
    void explicitModes() throws IOException {
        Path kvm = Files.createFile(dir.resolve("kvm"));
        assertThat(Accelerator.probe(AcceleratorMode.TCG, cpuinfo("vmx"), kvm, dir).kind())
                .isEqualTo(Accelerator.Kind.TCG);
        Accelerator forced = Accelerator.probe(AcceleratorMode.KVM, cpuinfo(""), kvm, dir);
        assertThat(forced.kind()).isEqualTo(Accelerator.Kind.KVM);
        assertThat(forced.reason()).contains("vm.accelerator=kvm although");
    }

    @Test
    void tscFromCpuMhz() throws IOException {
        assertThat(Accelerator.hostTscKhz(cpuinfo(""))).isEqualTo(2_596_122);
        assertThat(Accelerator.hostTscKhz(dir.resolve("missing"))).isZero();
    }

    @Test
    void thisHost() {
        // on these development/CI machines /dev/kvm is PVM: the probe must say TCG and why
        Accelerator accelerator = Accelerator.probe(AcceleratorMode.AUTO);
        System.out.println("accelerator on this host: " + accelerator);
        assertThat(accelerator.reason()).isNotBlank();
    }
}
