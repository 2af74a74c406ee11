package io.palisade.server.console;

import static io.palisade.server.console.DatabasePages.id;
import static io.palisade.server.console.DatabasePages.key;
import static io.palisade.server.console.Html.esc;

import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * What the console can do to databases, each through the API's own route: create, suspend, resume, restart, rotate the
 * password, delete (after typing the id), restore, fork and move. Each answers with a fragment that says it is done or
 * gives the API's problem detail; the page shows "Pending…" meanwhile. Thread-safe (stateless).
 */
final class DatabaseActions {
    private static final List<String> SIMPLE = List.of("suspend", "resume", "restart", "rotate");

    private final LoopbackApi api;
    private final DatabasePages pages;

    DatabaseActions(LoopbackApi api, DatabasePages pages) {
        this.api = api;
        this.pages = pages;
    }

    void register(Javalin app, UnaryOperator<Handler> safely) {
        app.post("/console/databases", safely.apply(this::create));
        for (String action : SIMPLE) {
            app.post("/console/databases/{id}/" + action, safely.apply(ctx -> simple(ctx, action)));
        }
        app.post("/console/databases/{id}/delete", safely.apply(this::delete));
        app.post("/console/databases/{id}/restore", safely.apply(this::restore));
        app.post("/console/databases/{id}/fork", safely.apply(this::fork));
        app.post("/console/databases/{id}/move", safely.apply(this::move));
    }

    /** The forms on a database's page. */
    String forms(String id, JsonNode db) {
        String base = "/console/databases/" + esc(id);
        StringBuilder out = new StringBuilder("<section aria-labelledby=\"actions-h\">")
                .append("<h2 id=\"actions-h\">Actions</h2>").append("<div class=\"actions\">");
        for (String action : SIMPLE) {
            String label = action.equals("rotate") ? "Rotate password"
                    : Character.toUpperCase(action.charAt(0)) + action.substring(1);
            out.append("<button type=\"button\" id=\"action-").append(action).append("\" hx-post=\"").append(base)
                    .append('/').append(action).append("\" hx-target=\"#action-feedback\">").append(label)
                    .append("</button>");
        }
        out.append("</div><p id=\"action-feedback\" class=\"feedback\" role=\"status\" aria-live=\"polite\"></p>")
                .append("<details><summary>Restore, fork or move</summary>")
                .append(form(base + "/restore", "restore", "Restore in place",
                        "<label>To time (RFC 3339, empty for the latest) <input name=\"target_time\" "
                                + "placeholder=\"2026-12-01T10:15:30Z\"></label>"))
                .append(form(base + "/fork", "fork", "Fork",
                        "<label>Label of the fork <input name=\"label\" maxlength=\"100\"></label>"
                                + "<label>At time (empty for the latest) <input name=\"target_time\"></label>"))
                .append(form(base + "/move", "move", "Move",
                        "<label>To rung <select name=\"isolation\">" + rungOptions(db.path("isolation").asText())
                                + "</select></label>"))
                .append("</details>")
                .append("<form id=\"delete-form\" class=\"danger-zone\" hx-post=\"").append(base)
                .append("/delete\" hx-target=\"#delete-feedback\"><h3>Delete</h3><label for=\"confirm\">Type the ")
                .append("database id <code>").append(esc(id)).append("</code> to delete it and all its data</label>")
                .append("<input id=\"confirm\" name=\"confirm\" autocomplete=\"off\" spellcheck=\"false\">")
                .append("<button type=\"submit\" class=\"danger\">Delete database</button>")
                .append("<span id=\"delete-feedback\" class=\"feedback\" role=\"status\" aria-live=\"polite\"></span>")
                .append("</form></section>");
        return out.toString();
    }

    private String rungOptions(String current) {
        StringBuilder out = new StringBuilder();
        for (JsonNode rung : api.get(null, "/v1/health").body().path("rungs")) {
            String name = rung.path("name").asText();
            if (rung.path("available").asBoolean() && !name.equals(current)) {
                out.append("<option value=\"").append(esc(name)).append("\">").append(esc(name)).append("</option>");
            }
        }
        return out.toString();
    }

    private static String form(String action, String name, String button, String fields) {
        return "<form id=\"" + name + "-form\" class=\"inline\" hx-post=\"" + action + "\" hx-target=\"#" + name
                + "-feedback\">" + fields + "<button type=\"submit\">" + button + "</button><span id=\"" + name
                + "-feedback\" class=\"feedback\" role=\"status\" aria-live=\"polite\"></span></form>";
    }

    private void create(Context ctx) {
        Map<String, Object> body = new LinkedHashMap<>();
        put(body, "label", ctx.formParam("label"));
        put(body, "isolation", ctx.formParam("isolation"));
        JsonNode created = DatabasePages.ok(api.post(key(ctx), "/v1/databases", body));
        String id = created.path("id").asText();
        ctx.header("HX-Redirect", "/console/databases/" + LoopbackApi.enc(id));
        ctx.html(Html.done("Created " + id + " (" + created.path("status").asText() + ")"));
    }

    private void simple(Context ctx, String action) {
        String path = "/v1/databases/" + LoopbackApi.enc(id(ctx)) + "/"
                + (action.equals("rotate") ? "credentials/rotate" : action);
        JsonNode answer = DatabasePages.ok(api.post(key(ctx), path, null));
        if (action.equals("rotate")) {
            // the new password replaces the old on the page (masked); the old one no longer logs in
            ctx.html(Html.done("Done: the password is rotated; the old one no longer works.")
                    + pages.connection(ctx, false).replaceFirst("<div id=\"connection\"",
                    "<div id=\"connection\" hx-swap-oob=\"true\""));
            return;
        }
        ctx.html(Html.done("Done: " + action + " → " + answer.path("status").asText()));
    }

    private void delete(Context ctx) {
        String id = id(ctx);
        String typed = ctx.formParam("confirm");
        if (typed == null || !typed.strip().equals(id)) {
            ctx.status(400).html(Html.problem("type the database id " + id + " exactly to confirm the delete"));
            return;
        }
        DatabasePages.ok(api.delete(key(ctx), "/v1/databases/" + LoopbackApi.enc(id)));
        ctx.header("HX-Redirect", "/console/databases");
        ctx.html(Html.done("Deleted " + id));
    }

    private void restore(Context ctx) {
        Map<String, Object> body = new LinkedHashMap<>();
        put(body, "target_time", ctx.formParam("target_time"));
        if (body.isEmpty()) {
            body.put("latest", true);
        }
        JsonNode answer = DatabasePages.ok(api.post(key(ctx), "/v1/databases/" + LoopbackApi.enc(id(ctx))
                + "/restore", body));
        ctx.html(Html.done("Restore started: " + answer.path("status").asText("accepted")));
    }

    private void fork(Context ctx) {
        Map<String, Object> body = new LinkedHashMap<>();
        put(body, "label", ctx.formParam("label"));
        put(body, "target_time", ctx.formParam("target_time"));
        JsonNode created = DatabasePages.ok(api.post(key(ctx), "/v1/databases/" + LoopbackApi.enc(id(ctx))
                + "/fork", body));
        String forkId = created.path("id").asText();
        ctx.html(Html.done("Forked as ") + "<a href=\"/console/databases/" + esc(forkId) + "\">" + esc(forkId)
                + "</a>");
    }

    private void move(Context ctx) {
        Map<String, Object> body = new LinkedHashMap<>();
        put(body, "isolation", ctx.formParam("isolation"));
        JsonNode answer = DatabasePages.ok(api.post(key(ctx), "/v1/databases/" + LoopbackApi.enc(id(ctx))
                + "/isolation", body));
        ctx.html(Html.done("Move started: " + answer.path("phase").asText(answer.path("status").asText("accepted"))));
    }

    private static void put(Map<String, Object> body, String name, String value) {
        if (value != null && !value.isBlank()) {
            body.put(name, value.strip());
        }
    }
}
