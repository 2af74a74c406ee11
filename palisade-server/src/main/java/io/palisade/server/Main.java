package io.palisade.server;

import io.palisade.cli.Cli;
import io.palisade.cli.DbCommand;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The one binary: {@code palisade serve} runs everything; {@code palisade db …} talks to a running server. */
@Command(
        name = "palisade",
        description = "A PostgreSQL per tenant, each in its own microVM or process, behind one REST API.",
        mixinStandardHelpOptions = true,
        version = "palisade 0.1.0",
        subcommands = {Main.Serve.class, DbCommand.class, AotTraining.class})
public final class Main {
    public static void main(String[] args) {
        System.exit(Cli.configure(new CommandLine(new Main())).execute(args));
    }

    @Command(name = "serve", description = "Run palisade in the foreground (API, store, agent).", mixinStandardHelpOptions = true)
    static final class Serve implements Callable<Integer> {
        @Option(names = "--data-dir", description = "State directory (server.data-dir)")
        Path dataDir;

        @Option(names = "--api-port", description = "REST API port (api.port)")
        Integer apiPort;

        @Option(names = "--api-host", description = "REST API bind address (api.host)")
        String apiHost;

        @Option(names = "--store-url", description = "External metadata PostgreSQL, jdbc:postgresql://… (store.url)")
        String storeUrl;

        @Option(names = "--config", description = "A .properties file of configuration keys")
        Path configFile;

        @Option(names = {"-c", "--set"}, description = "key=value, e.g. -c api.create-wait=30s (repeatable)")
        List<String> settings = List.of();

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
            Map<String, String> values = new LinkedHashMap<>();
            if (configFile != null) {
                Properties properties = new Properties();
                try (InputStream in = Files.newInputStream(configFile)) {
                    properties.load(in);
                } catch (IOException e) {
                    throw io.palisade.spi.PalisadeException.invalid("cannot read --config " + configFile + ": " + e.getMessage());
                }
                properties.stringPropertyNames().forEach(name -> values.put(name, properties.getProperty(name).strip()));
            }
            for (String setting : settings) {
                int eq = setting.indexOf('=');
                if (eq <= 0) {
                    throw io.palisade.spi.PalisadeException.invalid("--set expects key=value, got '" + setting + "'");
                }
                values.put(setting.substring(0, eq).strip(), setting.substring(eq + 1).strip());
            }
            if (dataDir != null) {
                values.put("server.data-dir", dataDir.toString());
            }
            if (apiPort != null) {
                values.put("api.port", apiPort.toString());
            }
            if (apiHost != null) {
                values.put("api.host", apiHost);
            }
            if (storeUrl != null) {
                values.put("store.url", storeUrl);
            }
            ServerConfig config = ServerConfig.from(values);
            PalisadeServer server = PalisadeServer.start(config, Optional.ofNullable(System.getenv(PalisadeServer.BOOTSTRAP_KEY_ENV)));
            CountDownLatch stopped = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                server.close();
                stopped.countDown();
            }, "palisade-shutdown"));
            System.out.println("palisade is ready");
            System.out.println("  REST API:  " + server.apiBaseUrl() + "   (health: " + server.apiBaseUrl() + "/v1/health)");
            server.proxyPort().ifPresent(port -> System.out.println(
                    "  Postgres:  <id>." + config.proxyDomain() + ":" + port + " (TLS, routed by SNI)"));
            server.caCertificate().ifPresent(ca -> System.out.println("  TLS CA:    " + ca + "   (sslrootcert for verify-full)"));
            System.out.println("  data dir:  " + config.dataDir());
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
