package io.palisade.server.console;

import static io.palisade.server.console.DatabasePages.id;
import static io.palisade.server.console.DatabasePages.key;
import static io.palisade.server.console.Html.esc;
import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import java.time.Duration;
import java.util.function.UnaryOperator;

/**
 * The SQL editor: runs one statement through the broker's {@code /sql} logged in with the database's own credentials
 * (fetched through the API, so only the owner's key gets them), and renders the result as a table or the error with
 * its SQLSTATE and position. The broker's own row and time limits apply. Thread-safe (stateless).
 */
public final class SqlEditor {
    /** The broker's limits, as shown to the user. */
    public record Limits(int maxRows, Duration statementTimeout) {
        public Limits {
            requireNonNull(statementTimeout, "statementTimeout is null");
        }
    }

    /**
     * Characters of result values rendered at most: the broker's response limit still allows a result whose escaped
     * HTML is several times larger (a quote becomes {@code &quot;}), built in memory per request and sent to a browser.
     */
    static final int MAX_RENDERED_CHARS = 500_000;

    private final LoopbackApi api;
    private final Limits limits;

    SqlEditor(LoopbackApi api, Limits limits) {
        this.api = api;
        this.limits = limits;
    }

    void register(Javalin app, UnaryOperator<Handler> safely) {
        app.get("/console/databases/{id}/sql", safely.apply(this::page));
        app.post("/console/databases/{id}/sql", safely.apply(this::run));
    }

    private void page(Context ctx) {
        JsonNode db = DatabasePages.ok(api.get(key(ctx), "/v1/databases/" + LoopbackApi.enc(id(ctx))));
        String id = db.path("id").asText();
        String name = db.path("label").asText("").isEmpty() ? id : db.path("label").asText();
        String body = "<h1>SQL · " + esc(name) + "</h1><p class=\"links\"><a href=\"/console/databases/" + esc(id)
                + "\">Back to " + esc(name) + "</a></p>"
                + "<form id=\"sql-form\" hx-post=\"/console/databases/" + esc(id) + "/sql\" hx-target=\"#result\">"
                + "<label for=\"sql\">SQL (runs as the database's own user; Ctrl+Enter runs it)</label>"
                + "<textarea id=\"sql\" name=\"sql\" rows=\"8\" spellcheck=\"false\">select 1</textarea>"
                + "<p class=\"note\">At most " + limits.maxRows() + " rows and " + limits.statementTimeout().toSeconds()
                + " s per statement (the broker's limits).</p><button type=\"submit\">Run</button></form>"
                + "<div id=\"result\" class=\"feedback result\" role=\"status\" aria-live=\"polite\"></div>";
        ctx.html(Html.page("SQL · " + name, ConsoleRoutes.current(ctx).csrfToken(), body));
    }

    private void run(Context ctx) {
        String sql = ctx.formParam("sql");
        if (sql == null || sql.isBlank()) {
            ctx.status(400).html(Html.problem("write a statement to run"));
            return;
        }
        JsonNode c = DatabasePages.ok(api.get(key(ctx), "/v1/databases/" + LoopbackApi.enc(id(ctx)) + "/connection"));
        long started = System.nanoTime();
        LoopbackApi.Reply reply = api.sql(id(ctx), c.path("username").asText(), c.path("password").asText(),
                c.path("database").asText(), sql, limits.statementTimeout().plusSeconds(15));
        long millis = (System.nanoTime() - started) / 1_000_000;
        if (!reply.ok()) {
            ctx.status(reply.status() >= 500 ? reply.status() : 400).html(error(reply));
            return;
        }
        ctx.html(table(reply.body(), millis));
    }

    private static String error(LoopbackApi.Reply reply) {
        JsonNode e = reply.body();
        StringBuilder out = new StringBuilder("<div class=\"problem sql-error\" role=\"alert\">");
        String severity = e.path("severity").asText("");
        out.append("<strong>").append(esc(severity.isEmpty() ? "Error" : severity)).append("</strong> ");
        String code = e.path("code").asText("");
        if (!code.isEmpty()) {
            out.append("<span class=\"sqlstate\">SQLSTATE <code data-sqlstate>").append(esc(code))
                    .append("</code></span> ");
        }
        if (e.hasNonNull("position")) {
            out.append("<span class=\"position\">at position <code data-position>")
                    .append(esc(e.path("position").asText())).append("</code></span> ");
        }
        out.append("<span class=\"message\">").append(esc(reply.problem())).append("</span>");
        for (String field : new String[] {"detail", "hint"}) {
            if (e.hasNonNull(field) && !e.path(field).asText().isEmpty() && e.has("severity")) {
                out.append("<br><span class=\"").append(field).append("\">").append(field).append(": ")
                        .append(esc(e.path(field).asText())).append("</span>");
            }
        }
        return out.append("</div>").toString();
    }

    private static String table(JsonNode result, long millis) {
        StringBuilder out = new StringBuilder();
        JsonNode fields = result.path("fields");
        JsonNode rows = result.path("rows");
        out.append("<p class=\"done\">").append(esc(result.path("command").asText(""))).append(" · ")
                .append(rows.size()).append(rows.size() == 1 ? " row" : " rows").append(" · ").append(millis)
                .append(" ms</p>");
        if (fields.isEmpty()) {
            return out.toString();
        }
        out.append("<div class=\"scroll\"><table class=\"sql-result\"><thead><tr>");
        for (JsonNode field : fields) {
            out.append("<th scope=\"col\">").append(esc(field.path("name").asText())).append("</th>");
        }
        out.append("</tr></thead><tbody>");
        int budget = MAX_RENDERED_CHARS;
        int shown = 0;
        boolean cut = false;
        for (JsonNode row : rows) {
            if (budget <= 0) {
                break;
            }
            out.append("<tr>");
            for (JsonNode value : row) {
                if (value.isNull()) {
                    out.append("<td class=\"null\">NULL</td>");
                    continue;
                }
                String text = value.isValueNode() ? value.asText() : value.toString();
                if (text.length() > budget) {
                    text = text.substring(0, Math.max(0, budget)) + "…";
                    cut = true;
                }
                budget -= text.length();
                out.append("<td>").append(esc(text)).append("</td>");
            }
            out.append("</tr>");
            shown++;
        }
        out.append("</tbody></table></div>");
        if (cut || shown < rows.size()) {
            out.append("<p class=\"note\" data-cut>The console shows at most ").append(MAX_RENDERED_CHARS)
                    .append(" characters of a result: ").append(shown).append(" of ").append(rows.size())
                    .append(" rows, long values cut (…). Narrow the query, or use the broker or psql for all of it.")
                    .append("</p>");
        }
        return out.toString();
    }
}
