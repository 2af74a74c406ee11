package io.palisade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.PrintWriter;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code palisade db …}: databases over the REST API. */
@Command(
        name = "db",
        description = "Create, list, inspect, connect to and delete databases.",
        mixinStandardHelpOptions = true,
        subcommands = {
            DbCommand.Create.class,
            DbCommand.ListDatabases.class,
            DbCommand.Get.class,
            DbCommand.Delete.class,
            DbCommand.Psql.class,
            BackupCommands.ListBackups.class,
            BackupCommands.Backup.class,
            BackupCommands.Restore.class,
            BackupCommands.Fork.class,
            MoveCommand.class
        })
public final class DbCommand {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    @Option(names = "--api-url", description = "REST API base URL (env PALISADE_API_URL, default ${DEFAULT-VALUE})",
            defaultValue = "${env:PALISADE_API_URL:-http://127.0.0.1:8080}")
    String apiUrl;

    @Option(names = "--api-key", description = "API key (env PALISADE_API_KEY)", defaultValue = "${env:PALISADE_API_KEY}")
    String apiKey;

    @Option(names = "--json", description = "Print the raw JSON answer")
    boolean json;

    @Spec
    CommandSpec spec;

    ApiClient client() {
        try {
            return new ApiClient(URI.create(apiUrl), apiKey);
        } catch (IllegalArgumentException e) {
            throw PalisadeException.invalid("--api-url '" + apiUrl + "' is not a URL");
        }
    }

    PrintWriter out() {
        return spec.commandLine().getOut();
    }

    /** A created, restored or forked database: the raw JSON with --json, else the lines people read. */
    void printDatabase(JsonNode db) {
        if (json) {
            print(db);
            return;
        }
        out().println("id:             " + db.path("id").asText());
        out().println("status:         " + db.path("status").asText());
        out().println("isolation:      " + db.path("isolation").asText());
        if (db.has("pre_restore_database")) {
            out().println("pre-restore:    " + db.path("pre_restore_database").path("id").asText());
        }
        if (db.has("connection_url")) {
            out().println("connection_url: " + db.path("connection_url").asText());
        }
    }

    void print(JsonNode node) {
        try {
            out().println(MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(node));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    @Command(name = "create", description = "Create a database; blocks until it accepts connections.",
            mixinStandardHelpOptions = true)
    static final class Create implements Callable<Integer> {
        @ParentCommand
        DbCommand parent;

        @Option(names = "--label", description = "Human label, e.g. tenant-acme-prod")
        String label;

        @Option(names = "--isolation", description = "vm, process, database, schema (default: the host's default rung)")
        String isolation;

        @Option(names = "--plan", description = "nano, small, medium, large")
        String plan;

        @Option(names = "--cpu", description = "vCPUs (overrides the plan)")
        Integer cpu;

        @Option(names = "--memory-mb", description = "Memory in MiB (overrides the plan)")
        Integer memoryMb;

        @Option(names = "--version", description = "PostgreSQL major version: 15, 16 (default), 17")
        String version;

        @Option(names = "--ttl-seconds", description = "Ephemeral: delete after this many seconds")
        Integer ttlSeconds;

        @Override
        public Integer call() {
            ObjectNode body = MAPPER.createObjectNode();
            if (label != null) {
                body.put("label", label);
            }
            if (isolation != null) {
                body.put("isolation", isolation);
            }
            if (plan != null) {
                body.put("plan", plan);
            }
            if (cpu != null) {
                body.put("cpu", cpu);
            }
            if (memoryMb != null) {
                body.put("memory_mb", memoryMb);
            }
            if (version != null) {
                body.put("version", version);
            }
            if (ttlSeconds != null) {
                body.put("ttl_seconds", ttlSeconds);
                body.put("persistent", false);
            }
            parent.printDatabase(parent.client().post("/v1/databases", body));
            return 0;
        }
    }

    @Command(name = "list", description = "List your databases (no secrets).", mixinStandardHelpOptions = true)
    static final class ListDatabases implements Callable<Integer> {
        @ParentCommand
        DbCommand parent;

        @Override
        public Integer call() {
            JsonNode list = parent.client().get("/v1/databases");
            if (parent.json) {
                parent.print(list);
                return 0;
            }
            parent.out().printf("%-14s %-24s %-12s %-9s %s%n", "ID", "LABEL", "STATUS", "ISOLATION", "CREATED");
            for (JsonNode db : list.path("databases")) {
                parent.out().printf("%-14s %-24s %-12s %-9s %s%n", db.path("id").asText(), db.path("label").asText(),
                        db.path("status").asText(), db.path("isolation").asText(), db.path("created_at").asText());
            }
            return 0;
        }
    }

    @Command(name = "get", description = "Show one database; --connection adds its credentials.",
            mixinStandardHelpOptions = true)
    static final class Get implements Callable<Integer> {
        @ParentCommand
        DbCommand parent;

        @Parameters(index = "0", paramLabel = "ID")
        String id;

        @Option(names = "--connection", description = "Include the connection URL and password")
        boolean connection;

        @Override
        public Integer call() {
            checkId(id);
            parent.print(parent.client().get("/v1/databases/" + id + (connection ? "/connection" : "")));
            return 0;
        }
    }

    @Command(name = "delete", description = "Delete a database and everything it has: instance, volume, secrets.",
            mixinStandardHelpOptions = true)
    static final class Delete implements Callable<Integer> {
        @ParentCommand
        DbCommand parent;

        @Parameters(index = "0", paramLabel = "ID")
        String id;

        @Override
        public Integer call() {
            checkId(id);
            parent.client().delete("/v1/databases/" + id);
            parent.out().println("deleted " + id);
            return 0;
        }
    }

    @Command(name = "psql", description = "Open psql on a database (credentials passed through the environment); "
            + "further arguments go to psql, e.g. -c 'select 1'.", mixinStandardHelpOptions = true)
    static final class Psql implements Callable<Integer> {
        @ParentCommand
        DbCommand parent;

        @Parameters(index = "0", paramLabel = "ID")
        String id;

        @picocli.CommandLine.Unmatched
        List<String> extra = new ArrayList<>();

        @Override
        public Integer call() throws Exception {
            checkId(id);
            JsonNode conn = parent.client().get("/v1/databases/" + id + "/connection");
            List<String> command = new ArrayList<>(List.of("psql", "-v", "ON_ERROR_STOP=1"));
            command.addAll(extra);
            ProcessBuilder builder = new ProcessBuilder(command).inheritIO();
            JsonNode env = conn.path("libpq_env");
            env.properties().forEach(e -> builder.environment().put(e.getKey(), e.getValue().asText()));
            builder.environment().put("PGPASSWORD", conn.path("password").asText());
            try {
                return builder.start().waitFor();
            } catch (java.io.IOException e) {
                throw new PalisadeException(ErrorCode.INTERNAL, "cannot run psql (apt-get install postgresql-client): "
                        + e.getMessage());
            }
        }
    }

    static void checkId(String id) {
        if (!id.matches("[a-z][a-z0-9-]{2,62}")) {
            throw PalisadeException.invalid("'" + id + "' is not a database id (like db-7k3q9x2m)");
        }
    }
}
