package io.palisade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code palisade db move ID --to RUNG}: moves a database to another rung (same id, URL, password) and follows the
 * move to its end, its phase and copy progress on stderr; {@code --cancel} stops a running move. Exit status 0 when
 * the move is done (or cancelled as asked), 1 with the move's detail when it failed.
 */
@Command(name = "move", description = "Move a database to another rung (vm, process, database, schema) online; same id,"
        + " URL and password.", mixinStandardHelpOptions = true)
final class MoveCommand implements Callable<Integer> {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    @ParentCommand
    DbCommand parent;

    @Parameters(index = "0", description = "database id")
    String id;

    @Option(names = "--to", description = "the rung to move to: vm, process, database or schema")
    String to;

    @Option(names = "--plan", description = "the plan on the new rung (default: the current one)")
    String plan;

    @Option(names = "--cancel", description = "cancel the database's running move instead")
    boolean cancel;

    @Option(names = "--no-wait", description = "start the move and return at once")
    boolean noWait;

    @Override
    public Integer call() throws InterruptedException {
        ApiClient client = parent.client();
        if (cancel) {
            JsonNode cancelled = client.delete("/v1/databases/" + id + "/move");
            parent.print(cancelled);
            return 0;
        }
        if (to == null) {
            throw PalisadeException.invalid("say where to: --to vm|process|database|schema (or --cancel)");
        }
        ObjectNode body = MAPPER.createObjectNode().put("isolation", to);
        if (plan != null) {
            body.put("plan", plan);
        }
        JsonNode move = client.post("/v1/databases/" + id + "/isolation", body);
        String last = "";
        while (!noWait && !move.path("finished").asBoolean()) {
            String line = "move " + move.path("from").asText() + " → " + move.path("to").asText() + ": "
                    + move.path("phase").asText() + " (" + move.path("copied_bytes").asLong() / 1024 + " of "
                    + move.path("total_bytes").asLong() / 1024 + " KiB copied, lag "
                    + move.path("lag_bytes").asLong() / 1024 + " KiB)" + move.path("detail").asText("").transform(
                            d -> d.isEmpty() ? "" : " — " + d);
            if (!line.equals(last)) {
                System.err.println(line);
                last = line;
            }
            Thread.sleep(500);
            move = client.get("/v1/databases/" + id + "/move");
        }
        if (parent.json) {
            parent.print(move);
        } else if (move.path("finished").asBoolean()) {
            parent.out().println("move " + move.path("id").asText() + ": " + move.path("phase").asText()
                    + (move.path("cutover_ms").isNull() ? "" : " (cutover " + move.path("cutover_ms").asLong() + " ms)")
                    + " — " + move.path("detail").asText());
        } else {
            parent.out().println("move " + move.path("id").asText() + " started: " + move.path("phase").asText());
        }
        if ("failed".equals(move.path("phase").asText())) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "move of " + id + " failed: "
                    + move.path("detail").asText());
        }
        return 0;
    }
}
