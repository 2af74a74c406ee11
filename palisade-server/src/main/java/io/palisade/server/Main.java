package io.palisade.server;

import io.palisade.cli.Cli;
import io.palisade.cli.DbCommand;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The one binary: {@code palisade serve} runs everything; {@code palisade db …} talks to a running server. */
@Command(
        name = "palisade",
        description = "A PostgreSQL per tenant, each in its own microVM or process, behind one REST API.",
        mixinStandardHelpOptions = true,
        version = "palisade 0.1.0",
        subcommands = {Main.Serve.class, DbCommand.class, AotTraining.class, PrepareTemplate.class})
public final class Main {
    public static void main(String[] args) {
        System.exit(Cli.configure(new CommandLine(new Main())).execute(args));
    }

    @Command(name = "serve", description = "Run palisade in the foreground (API, store, agent).", mixinStandardHelpOptions = true)
    static final class Serve implements Callable<Integer> {
        /** How long a stop waits for a start in progress before the JVM halts anyway. */
        private static final Duration START_WAIT = Duration.ofSeconds(60);

        @Mixin
        ServerSettings settings;

        @Option(names = "--help-config", description = "Print every configuration key with its type, default and "
                + "meaning, then exit")
        boolean helpConfig;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            if (helpConfig) {
                spec.commandLine().getOut().print(ConfigDocs.helpText());
                spec.commandLine().getOut().flush();
                return 0;
            }
            ServerConfig config = settings.config();
            // registered before the start: Ctrl-C, SIGTERM or SIGHUP during a start (store, shared servers, reconcile)
            // still stops what it started (its PostgreSQL servers run in sessions of their own: no signal reaches them)
            PendingStart start = new PendingStart();
            CountDownLatch stopped = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                start.await(START_WAIT).ifPresent(PalisadeServer::close);
                stopped.countDown();
            }, "palisade-shutdown"));
            PalisadeServer server = start.start(config,
                    Optional.ofNullable(System.getenv(PalisadeServer.BOOTSTRAP_KEY_ENV)));
            if (start.stopRequested()) {
                System.out.println("palisade: stopping (asked to stop during its start)");
            } else {
                System.out.println("palisade is ready");
                System.out.println("  REST API:  " + server.apiBaseUrl() + "   (health: " + server.apiBaseUrl()
                        + "/v1/health)");
                server.proxyPort().ifPresent(port -> System.out.println(
                        "  Postgres:  <id>." + config.proxyDomain() + ":" + port + " (TLS, routed by SNI)"));
                server.caCertificate().ifPresent(ca -> System.out.println("  TLS CA:    " + ca
                        + "   (sslrootcert for verify-full)"));
                System.out.println("  data dir:  " + config.dataDir());
            }
            // shown even when stopping: no later start shows it again
            server.generatedApiKey().ifPresent(key -> {
                System.out.println("  admin API key (shown once, store it now): " + key);
                System.out.println("  export PALISADE_API_KEY=" + key);
            });
            System.out.flush();
            stopped.await();
            return 0;
        }
    }
}
