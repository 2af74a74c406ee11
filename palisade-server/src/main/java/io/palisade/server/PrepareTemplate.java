package io.palisade.server;

import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import io.palisade.spi.DriverProbe;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.vmm.PreparedTemplate;
import io.palisade.vmm.VmDriver;
import java.io.IOException;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/**
 * {@code palisade prepare-template [serve's options]}: builds the vm rung's template snapshot for the default plan now,
 * in the foreground, with exactly the configuration {@code serve} would run with ({@link ServerSettings}), then exits.
 * {@code bin/palisade serve} runs it after the guest image build and before the server starts, so on a host's first
 * start (or after a new guest image) the first create clones instead of waiting for the template VM's cold boot; a
 * template that exists already is only marked used. It holds the data directory's lock ({@link DataDirLock}) as serve
 * does, so it refuses to run beside a palisade serving that directory. It starts no server: only the template VM (its
 * own id and network slot, as a server's background preparation would use), which a shutdown hook kills if the process
 * is stopped mid-build. Nothing to do (exit 0, one line saying why) when the vm rung is off or not usable here; a
 * failed build exits non-zero with the reason, and {@code serve} then prepares it in the background as before.
 */
@Command(name = "prepare-template", hidden = true, mixinStandardHelpOptions = true,
        description = "Build the vm rung's template snapshot for the default plan now, with serve's configuration.")
final class PrepareTemplate implements Callable<Integer> {
    @Mixin
    ServerSettings settings;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        ServerConfig config = settings.config();
        if (!config.vmEnabled() || !config.vmPrepareTemplate()) {
            out.println("palisade: no vm template to prepare ("
                    + (config.vmEnabled() ? "vm.prepare-template" : "vm.enabled") + " is false)");
            return 0;
        }
        try (DataDirLock lock = DataDirLock.acquire(config.dataDir())) {
            return prepare(config, out);
        }
    }

    private static int prepare(ServerConfig config, PrintWriter out) {
        ServiceUser user = ServiceUser.resolve(config.serviceUser());
        user.checkCanTraverse(config.dataDir().resolve("instances"));
        VmDriver vm = new VmDriver(config.vmDriverConfig(user, Cgroups.detect(config.cgroupParent())),
                config.vmTemplatesDir(), true);
        Thread abandon = new Thread(() -> vm.abandonTemplateBuilds(Duration.ofSeconds(30)),
                "prepare-template-abandon");
        Runtime.getRuntime().addShutdownHook(abandon);
        try {
            DriverProbe probe = vm.probe();
            if (!probe.usable()) {
                out.println("palisade: no vm template prepared: the vm rung is not usable here (" + probe.reason()
                        + ")");
                return 0;
            }
            PreparedTemplate prepared = vm.prepareTemplateNow(Plan.NANO, PostgresVersion.DEFAULT,
                    phase -> out.println("palisade: vm template: " + phase));
            out.println(prepared.alreadyReady()
                    ? "palisade: vm template " + prepared.key() + " is ready (built before)"
                    : String.format("palisade: vm template %s built in %.1f s; the first vm create clones it",
                            prepared.key(), prepared.elapsedMs() / 1000.0));
            return 0;
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(abandon);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs (or ran) now
            }
            vm.close();
        }
    }
}
