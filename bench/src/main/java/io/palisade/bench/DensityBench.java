package io.palisade.bench;

import io.palisade.api.CreateDatabaseRequest;
import io.palisade.api.DatabaseService;
import io.palisade.host.Processes;
import io.palisade.server.PalisadeServer;
import io.palisade.server.ServerConfig;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Issue 7's density figure: provision {@value #DATABASES} vm databases, keep {@value #AWAKE} awake and suspend the rest,
 * then measure what the host actually spends (QEMU RSS, MemAvailable, disk) and extrapolate to this host's RAM and
 * free disk.
 */
final class DensityBench {
    private static final int DATABASES = 20;
    private static final int AWAKE = 2;

    private DensityBench() {}

    static void run() throws Exception {
        Path work = TestingDirectories.newWorkDir("bench-density");
        try (PalisadeServer server = PalisadeServer.start(ServerConfig.from(Map.of(
                        "server.data-dir", work.resolve("s").toString(),
                        "api.port", "0",
                        "proxy.port", "0",
                        "vm.network-pool", "10.219.0.0/24",
                        "vm.image-dir", TestingDirectories.repoDir().resolve(".cache/guest/current").toString())),
                Optional.of("pk_bench_" + Long.toHexString(System.nanoTime())))) {
            DatabaseService service = server.service();
            long availableBefore = memAvailableKiB();
            List<String> ids = new ArrayList<>();
            for (int i = 0; i < DATABASES; i++) {
                ids.add(service.create("acct-admin", new CreateDatabaseRequest(
                        "density-" + i, "vm", null, null, null, null, null, null, null, null, "never", null, null)).database().id());
                System.err.printf("density: provisioned %d/%d%n", i + 1, DATABASES);
            }
            for (int i = AWAKE; i < DATABASES; i++) {
                service.suspend("acct-admin", ids.get(i));
            }
            Processes.sleep(java.time.Duration.ofSeconds(3));
            long awakeRss = 0;
            for (int i = 0; i < AWAKE; i++) {
                awakeRss += Processes.rssBytes(service.stats("acct-admin", ids.get(i)).pid());
            }
            long qemuProcesses = ProcessHandle.allProcesses()
                    .filter(p -> p.info().command().orElse("").contains("qemu-system")
                            && p.info().commandLine().orElse("").contains(work.toString()))
                    .count();
            long availableAfter = memAvailableKiB();
            long diskBytes = allocatedBytes(work.resolve("s/vm"));
            long freeDisk = Files.getFileStore(work).getUsableSpace();
            long totalRam = ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                    .getOperatingSystemMXBean()).getTotalMemorySize();
            double awakeMiB = awakeRss / (double) AWAKE / (1 << 20);
            double diskPerDbMiB = diskBytes / (double) DATABASES / (1 << 20);
            System.out.println();
            System.out.println("## density: " + DATABASES + " vm databases provisioned, " + AWAKE + " awake ("
                    + service.probes().get(io.palisade.spi.Rung.VM).accelerator() + ")");
            System.out.println("machine: " + Machine.describe());
            System.out.println();
            System.out.println("| measure | value |");
            System.out.println("|---|---:|");
            System.out.printf("| QEMU processes running | %d |%n", qemuProcesses);
            System.out.printf("| RSS per awake database | %.0f MiB |%n", awakeMiB);
            System.out.printf("| RSS per suspended database | 0 MiB (no process) |%n");
            System.out.printf("| host MemAvailable drop for all %d | %d MiB |%n", DATABASES, (availableBefore - availableAfter) / 1024);
            System.out.printf("| disk per database (volume + memory file + state) | %.0f MiB |%n", diskPerDbMiB);
            System.out.printf("| this host: awake databases that fit in RAM (80 %% of %d GiB) | ~%d |%n",
                    totalRam >> 30, (long) (totalRam * 0.8 / (awakeMiB * (1 << 20))));
            System.out.printf("| this host: provisioned (suspended) databases that fit on free disk (%d GiB) | ~%d |%n",
                    freeDisk >> 30, (long) (freeDisk * 0.8 / (diskPerDbMiB * (1 << 20))));
            for (String id : ids) {
                service.delete("acct-admin", id);
            }
        } finally {
            TestingDirectories.deleteRecursively(work);
        }
    }

    /** The host's {@code MemAvailable} in KiB (-1 if unknown). */
    static long memAvailableKiB() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("MemAvailable:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return -1;
    }

    private static long allocatedBytes(Path root) throws Exception {
        Processes.Result du = Processes.run(List.of("du", "-sb", "--apparent-size", root.toString()),
                java.time.Duration.ofMinutes(1), null);
        Processes.Result real = Processes.run(List.of("du", "-sB1", root.toString()), java.time.Duration.ofMinutes(1), null);
        String text = real.ok() ? real.output() : du.output();
        return Long.parseLong(text.strip().split("\\s+")[0]);
    }
}
