package io.palisade.server;

import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import picocli.CommandLine.Option;

/**
 * The configuration options {@code palisade serve} takes, as a picocli mixin, so every command that must see the
 * server's exact configuration ({@code serve}, {@code prepare-template}) parses it one way: the {@code --config} file
 * first, then each {@code -c key=value} in order, then the named options. Not thread-safe (filled by picocli).
 */
final class ServerSettings {
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

    /** The configuration these options give (validated by {@link ServerConfig#from}). */
    ServerConfig config() {
        return ServerConfig.from(values());
    }

    /** The raw key/value pairs, in the precedence stated on the class. */
    Map<String, String> values() {
        Map<String, String> values = new LinkedHashMap<>();
        if (configFile != null) {
            Properties properties = new Properties();
            try (InputStream in = Files.newInputStream(configFile)) {
                properties.load(in);
            } catch (IOException e) {
                throw PalisadeException.invalid("cannot read --config " + configFile + ": " + e.getMessage());
            }
            properties.stringPropertyNames().forEach(name -> values.put(name, properties.getProperty(name).strip()));
        }
        for (String setting : settings) {
            int eq = setting.indexOf('=');
            if (eq <= 0) {
                throw PalisadeException.invalid("--set expects key=value, got '" + setting + "'");
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
        return values;
    }
}
