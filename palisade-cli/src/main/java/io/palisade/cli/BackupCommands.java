package io.palisade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code palisade db backups|backup|restore|fork}: backups over the REST API, with progress on stderr. */
final class BackupCommands {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private BackupCommands() {}

    /** Where a restore or fork stops: --time, --lsn or latest (neither). */
    static final class Target {
        @Option(names = "--time", description = "RFC 3339 moment to restore to, e.g. 2026-12-01T10:15:30Z")
        String time;

        @Option(names = "--lsn", description = "WAL position to restore to, e.g. 0/16B3748")
        String lsn;

        void addTo(ObjectNode body) {
            if (time != null) {
                body.put("target_time", time);
            }
            if (lsn != null) {
                body.put("target_lsn", lsn);
            }
        }
    }

    @Command(name = "backups", description = "List base backups and the restorable window.", mixinStandardHelpOptions = true)
    static final class ListBackups implements Callable<Integer> {
        @ParentCommand
        DbCommand parent;

        @Parameters(index = "0", description = "database id")
        String id;

        @Override
        public Integer call() {
            JsonNode answer = parent.client().get("/v1/databases/" + id + "/backups");
            if (parent.json) {
                parent.print(answer);
                return 0;
            }
            JsonNode window = answer.path("window");
            parent.out().println("restorable: " + text(window.path("earliest")) + " .. " + text(window.path("latest")));
            JsonNode archive = answer.path("archive");
            if (!archive.isMissingNode()) {
                parent.out().println("archive:    " + (archive.path("healthy").asBoolean() ? "healthy" : "UNHEALTHY")
                        + ", lag " + archive.path("lag_bytes").asLong() + " bytes"
                        + (archive.path("last_error").isNull() ? "" : ", last error: " + archive.path("last_error").asText()));
            }
            for (JsonNode backup : answer.path("backups")) {
                parent.out().printf("%-14s %-9s %-10s %s  %d bytes%n", backup.path("id").asText(),
                        backup.path("state").asText(), backup.path("trigger").asText(), text(backup.path("finished_at")),
                        backup.path("bytes").asLong());
            }
            return 0;
        }
    }

    @Command(name = "backup", description = "Take a base backup now.", mixinStandardHelpOptions = true)
    static final class Backup implements Callable<Integer> {
        @ParentCommand
        DbCommand parent;

        @Parameters(index = "0", description = "database id")
        String id;

        @Override
        public Integer call() {
            JsonNode backup = withProgress(parent, id, () -> parent.client().post("/v1/databases/" + id + "/backups",
                    MAPPER.createObjectNode()));
            parent.print(backup);
            return 0;
        }
    }

    @Command(name = "restore", description = "Restore in place (same id and URL) to --time, --lsn or the latest moment;"
            + " the state before is kept as a new database.", mixinStandardHelpOptions = true)
    static final class Restore implements Callable<Integer> {
        @ParentCommand
        DbCommand parent;

        @Parameters(index = "0", description = "database id")
        String id;

        @picocli.CommandLine.Mixin
        Target target = new Target();

        @Option(names = "--as-new", description = "Restore into a new database instead, with this label")
        String asNew;

        @Override
        public Integer call() {
            ObjectNode body = MAPPER.createObjectNode();
            JsonNode answer;
            if (asNew != null) {
                ObjectNode restore = body.putObject("restore");
                restore.put("from", id);
                target.addTo(restore);
                body.put("label", asNew);
                answer = withProgress(parent, id, () -> parent.client().post("/v1/databases", body));
            } else {
                target.addTo(body);
                answer = withProgress(parent, id, () -> parent.client().post("/v1/databases/" + id + "/restore", body));
            }
            parent.printDatabase(answer);
            return 0;
        }
    }

    @Command(name = "fork", description = "A new database from the current state (or --time).",
            mixinStandardHelpOptions = true)
    static final class Fork implements Callable<Integer> {
        @ParentCommand
        DbCommand parent;

        @Parameters(index = "0", description = "source database id")
        String id;

        @picocli.CommandLine.Mixin
        Target target = new Target();

        @Option(names = "--label", description = "Label of the fork")
        String label;

        @Override
        public Integer call() {
            ObjectNode body = MAPPER.createObjectNode();
            target.addTo(body);
            if (label != null) {
                body.put("label", label);
            }
            parent.printDatabase(withProgress(parent, id,
                    () -> parent.client().post("/v1/databases/" + id + "/fork", body)));
            return 0;
        }
    }

    /** Runs a long request while printing the newest operation's phase of {@code id} to stderr as it changes. */
    static JsonNode withProgress(DbCommand parent, String id, Supplier<JsonNode> request) {
        AtomicBoolean done = new AtomicBoolean();
        Thread watcher = Thread.ofVirtual().name("palisade-cli-progress").start(() -> {
            String last = "";
            while (!done.get()) {
                try {
                    JsonNode ops = parent.client().get("/v1/databases/" + id + "/operations").path("operations");
                    if (ops.size() > 0 && "running".equals(ops.get(0).path("state").asText())) {
                        JsonNode op = ops.get(0);
                        String line = op.path("kind").asText() + ": " + op.path("phase").asText() + " ("
                                + op.path("bytes").asLong() / 1024 + " KiB, WAL " + op.path("wal_bytes").asLong() / 1024
                                + " KiB)";
                        if (!line.equals(last)) {
                            System.err.println(line);
                            last = line;
                        }
                    }
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException e) {
                    // progress is best effort; the request itself reports errors
                }
            }
        });
        try {
            return request.get();
        } finally {
            done.set(true);
            watcher.interrupt();
        }
    }

    private static String text(JsonNode node) {
        return node.isMissingNode() || node.isNull() || node.asText().isEmpty() ? "-" : node.asText();
    }
}
