package io.palisade.server.console;

import static io.palisade.server.console.Html.esc;

import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The databases list (live state, filter, sort) and one database's page: summary, connection strings with copy buttons
 * and the password on demand, charts, a live log tail and the forms of {@link DatabaseActions}. Everything is read
 * through {@link LoopbackApi} with the session's key. Thread-safe (stateless).
 */
final class DatabasePages {
    private static final List<String> SORTS = List.of("id", "label", "rung", "plan", "state", "region", "created",
            "idle", "size");
    private static final String MASK = "••••••••";

    private final LoopbackApi api;
    private final DatabaseActions actions;

    DatabasePages(LoopbackApi api) {
        this.api = api;
        this.actions = new DatabaseActions(api, this);
    }

    void register(Javalin app, UnaryOperator<Handler> safely) {
        app.get("/console/databases", safely.apply(this::listPage));
        app.get("/console/databases/rows", safely.apply(ctx -> ctx.html(rows(ctx))));
        app.get("/console/databases/{id}", safely.apply(this::databasePage));
        app.get("/console/databases/{id}/summary", safely.apply(ctx -> ctx.html(summary(key(ctx),
                describe(ctx)))));
        app.post("/console/databases/{id}/reveal", safely.apply(ctx -> ctx.html(connection(ctx, true))));
        app.get("/console/databases/{id}/logs", safely.apply(this::logs));
        app.get("/console/databases/{id}/metrics", safely.apply(this::metrics));
        actions.register(app, safely);
    }

    static String key(Context ctx) {
        return ConsoleRoutes.current(ctx).apiKey();
    }

    static String id(Context ctx) {
        return ctx.pathParam("id");
    }

    /** The API's answer, or the API's problem detail as a failure with the API's status. */
    static JsonNode ok(LoopbackApi.Reply reply) {
        if (!reply.ok()) {
            throw new PalisadeException(ErrorCode.fromHttpStatus(reply.status()), reply.problem());
        }
        return reply.body();
    }

    JsonNode describe(Context ctx) {
        return ok(api.get(key(ctx), "/v1/databases/" + LoopbackApi.enc(id(ctx))));
    }

    // the list

    private void listPage(Context ctx) {
        String sort = sort(ctx);
        String dir = "asc".equals(ctx.queryParam("dir")) ? "asc" : "desc";
        String q = ctx.queryParam("q") == null ? "" : ctx.queryParam("q");
        StringBuilder body = new StringBuilder();
        body.append("<h1>Databases</h1>")
                .append("<section aria-labelledby=\"new-h\"><h2 id=\"new-h\">New database</h2>")
                .append("<form class=\"inline\" hx-post=\"/console/databases\" hx-target=\"#create-feedback\">")
                .append("<label>Label <input name=\"label\" maxlength=\"100\"></label>")
                .append("<label>Rung <select name=\"isolation\"><option value=\"\">server default</option>");
        for (JsonNode rung : api.get(null, "/v1/health").body().path("rungs")) {
            if (rung.path("available").asBoolean()) {
                String name = rung.path("name").asText();
                body.append("<option value=\"").append(esc(name)).append("\">").append(esc(name)).append("</option>");
            }
        }
        body.append("</select></label><button type=\"submit\">Create</button>")
                .append("<span id=\"create-feedback\" class=\"feedback\" role=\"status\" aria-live=\"polite\"></span>")
                .append("</form></section>")
                .append("<form id=\"filter\" role=\"search\" class=\"inline\" hx-get=\"/console/databases/rows\" ")
                .append("hx-target=\"#rows\" hx-trigger=\"input changed delay:300ms, submit\">")
                .append("<label>Filter <input id=\"q\" name=\"q\" type=\"search\" value=\"").append(esc(q))
                .append("\" placeholder=\"id, label, state, rung or label value\"></label>")
                .append("<input type=\"hidden\" name=\"sort\" value=\"").append(esc(sort)).append("\">")
                .append("<input type=\"hidden\" name=\"dir\" value=\"").append(esc(dir)).append("\"></form>")
                .append("<div class=\"scroll\"><table id=\"databases\"><caption>Your databases (state updates live)")
                .append("</caption><thead><tr>");
        String[][] columns = {{"id", "ID"}, {"label", "Label"}, {"rung", "Rung"}, {"plan", "Plan"},
                {"state", "State"}, {"region", "Region"}, {null, "Labels"}, {"created", "Created"},
                {"idle", "Idle"}, {"size", "Size"}};
        for (String[] column : columns) {
            if (column[0] == null) {
                body.append("<th scope=\"col\">").append(column[1]).append("</th>");
                continue;
            }
            boolean active = column[0].equals(sort);
            String next = active && dir.equals("asc") ? "desc" : "asc";
            body.append("<th scope=\"col\"").append(active ? " aria-sort=\"" + (dir.equals("asc") ? "ascending"
                            : "descending") + "\"" : "").append("><a href=\"/console/databases?sort=").append(column[0])
                    .append("&amp;dir=").append(next).append("&amp;q=").append(esc(LoopbackApi.enc(q))).append("\">")
                    .append(column[1]).append(active ? (dir.equals("asc") ? " ▲" : " ▼") : "").append("</a></th>");
        }
        body.append("</tr></thead><tbody id=\"rows\" hx-include=\"#filter\" ")
                .append(Html.poll("/console/databases/rows", 2, "")).append(">").append(rows(ctx))
                .append("</tbody></table></div>");
        ctx.html(Html.page("Databases", ConsoleRoutes.current(ctx).csrfToken(), body.toString()));
    }

    private static String sort(Context ctx) {
        String sort = ctx.queryParam("sort");
        return sort != null && SORTS.contains(sort) ? sort : "created";
    }

    private String rows(Context ctx) {
        String sort = sort(ctx);
        boolean asc = "asc".equals(ctx.queryParam("dir"));
        String q = ctx.queryParam("q") == null ? "" : ctx.queryParam("q").strip().toLowerCase(Locale.ROOT);
        List<Row> rows = new ArrayList<>();
        for (JsonNode db : ok(api.get(key(ctx), "/v1/databases")).path("databases")) {
            Row row = Row.of(db, size(key(ctx), db));
            if (q.isEmpty() || row.matches(q)) {
                rows.add(row);
            }
        }
        Comparator<Row> order = Row.order(sort);
        rows.sort(asc ? order : order.reversed());
        StringBuilder out = new StringBuilder();
        for (Row row : rows) {
            out.append(row.html());
        }
        if (rows.isEmpty()) {
            out.append("<tr><td colspan=\"10\">").append(q.isEmpty() ? "No databases yet: create one above."
                    : "No database matches the filter.").append("</td></tr>");
        }
        return out.toString();
    }

    /** Disk use of a running database, -1 when unknown (not running, or the API could not say). */
    private long size(String key, JsonNode db) {
        if (!"running".equals(db.path("status").asText())) {
            return -1;
        }
        LoopbackApi.Reply stats = api.get(key, "/v1/databases/" + LoopbackApi.enc(db.path("id").asText()) + "/stats");
        return stats.ok() && stats.body().path("disk_bytes").isNumber() ? stats.body().path("disk_bytes").asLong() : -1;
    }

    private record Row(String id, String label, String rung, String plan, String state, String region, String labels,
            String created, long idle, long size) {
        static Row of(JsonNode db, long size) {
            List<String> labels = new ArrayList<>();
            db.path("labels").properties().forEach(e -> labels.add(e.getKey() + "=" + e.getValue().asText()));
            return new Row(db.path("id").asText(), db.path("label").asText(""), db.path("isolation").asText(),
                    db.path("plan").path("name").asText(), db.path("status").asText(),
                    DatabasePages.region(db), String.join(", ", labels), db.path("created_at").asText(),
                    db.path("idle_seconds").asLong(), size);
        }

        boolean matches(String q) {
            return (id + " " + label + " " + rung + " " + plan + " " + state + " " + region + " " + labels)
                    .toLowerCase(Locale.ROOT).contains(q);
        }

        static Comparator<Row> order(String sort) {
            Comparator<Row> order = switch (sort) {
                case "id" -> Comparator.comparing(Row::id);
                case "label" -> Comparator.comparing(Row::label, String.CASE_INSENSITIVE_ORDER);
                case "rung" -> Comparator.comparing(Row::rung);
                case "plan" -> Comparator.comparing(Row::plan);
                case "state" -> Comparator.comparing(Row::state);
                case "region" -> Comparator.comparing(Row::region);
                case "idle" -> Comparator.comparingLong(Row::idle);
                case "size" -> Comparator.comparingLong(Row::size);
                default -> Comparator.comparing(Row::created);
            };
            return order.thenComparing(Row::id);
        }

        String html() {
            return "<tr data-id=\"" + esc(id) + "\"><td><a href=\"/console/databases/" + esc(id) + "\">" + esc(id)
                    + "</a></td><td class=\"label\">" + esc(label) + "</td><td>" + esc(rung) + "</td><td>" + esc(plan)
                    + "</td><td><span class=\"state state-" + esc(state) + "\" data-state>" + esc(state)
                    + "</span></td><td>" + esc(region) + "</td><td>" + esc(labels) + "</td><td>"
                    + esc(Html.time(created)) + "</td><td>" + esc(Html.duration(idle)) + "</td><td>"
                    + esc(Html.bytes(size)) + "</td></tr>";
        }
    }

    // one database

    private void databasePage(Context ctx) {
        JsonNode db = describe(ctx);
        String id = db.path("id").asText();
        String base = "/console/databases/" + esc(id);
        String title = db.path("label").asText("").isEmpty() ? id : db.path("label").asText();
        StringBuilder body = new StringBuilder();
        body.append("<h1>").append(esc(title)).append(" <small>").append(esc(id)).append("</small></h1>")
                .append("<p class=\"links\"><a href=\"").append(base).append("/sql\">Open the SQL editor</a></p>")
                .append("<dl id=\"summary\" class=\"summary\" ").append(Html.poll(base + "/summary", 2, ""))
                .append(">").append(summary(key(ctx), db)).append("</dl>")
                .append("<section id=\"charts\" aria-labelledby=\"charts-h\" data-metrics=\"").append(base)
                .append("/metrics\"><h2 id=\"charts-h\">Charts</h2><div class=\"windows\" role=\"group\" ")
                .append("aria-label=\"Time window\"><button type=\"button\" data-window=\"1h\" aria-pressed=\"true\">")
                .append("Last hour</button><button type=\"button\" data-window=\"1d\" aria-pressed=\"false\">Last day")
                .append("</button></div><p class=\"chart-status\" role=\"status\">Loading…</p>")
                .append("<div class=\"plots\"></div></section>")
                .append("<section aria-labelledby=\"conn-h\"><h2 id=\"conn-h\">Connect</h2>")
                .append(connection(ctx, false)).append("</section>")
                .append(actions.forms(id, db))
                .append("<section aria-labelledby=\"logs-h\"><h2 id=\"logs-h\">Log</h2>")
                .append("<pre id=\"logs\" class=\"logs\" tabindex=\"0\" ").append(Html.poll(base + "/logs", 3, "load"))
                .append(">Loading…</pre></section>");
        ctx.html(Html.page(title, ConsoleRoutes.current(ctx).csrfToken(), body.toString()));
    }

    String summary(String key, JsonNode db) {
        List<String> labels = new ArrayList<>();
        db.path("labels").properties().forEach(e -> labels.add(e.getKey() + "=" + e.getValue().asText()));
        String state = db.path("status").asText();
        StringBuilder out = new StringBuilder();
        item(out, "State", "<span class=\"state state-" + esc(state) + "\" id=\"state\" data-state>" + esc(state)
                + "</span>" + (db.hasNonNull("status_reason") ? " <span class=\"reason\">"
                + esc(db.path("status_reason").asText()) + "</span>" : ""));
        item(out, "Rung", esc(db.path("isolation").asText()));
        JsonNode plan = db.path("plan");
        item(out, "Plan", esc(plan.path("name").asText() + " (" + plan.path("cpu").asText() + " CPU, "
                + plan.path("memory_mb").asText() + " MB memory, " + plan.path("disk_mb").asText() + " MB disk)"));
        item(out, "Region", esc(region(db)));
        item(out, "PostgreSQL", esc(db.path("version").asText()));
        item(out, "Created", esc(Html.time(db.path("created_at").asText())));
        item(out, "Idle", esc(Html.duration(db.path("idle_seconds").asLong())));
        item(out, "Size", esc(Html.bytes(size(key, db))));
        item(out, "Labels", labels.isEmpty() ? "—" : esc(String.join(", ", labels)));
        return out.toString();
    }

    /** The region label the database was created with, else the host it is pinned to. */
    static String region(JsonNode db) {
        String region = db.path("labels").path("region").asText("");
        return region.isEmpty() ? db.path("pinned_host").asText("") : region;
    }

    private static void item(StringBuilder out, String name, String valueHtml) {
        out.append("<div><dt>").append(name).append("</dt><dd>").append(valueHtml).append("</dd></div>");
    }

    /** The connection strings in every form the API gives; secrets masked unless {@code reveal}. */
    String connection(Context ctx, boolean reveal) {
        String id = id(ctx);
        JsonNode c = ok(api.get(key(ctx), "/v1/databases/" + LoopbackApi.enc(id) + "/connection"));
        String password = c.path("password").asText("");
        String token = c.path("broker_token").asText("");
        UnaryOperator<String> mask = text -> {
            if (reveal) {
                return text;
            }
            String out = text;
            for (String secret : List.of(password, LoopbackApi.enc(password), token)) {
                if (!secret.isEmpty()) {
                    out = out.replace(secret, MASK);
                }
            }
            return out;
        };
        StringBuilder out = new StringBuilder("<div id=\"connection\" class=\"connection\">");
        int n = 0;
        for (Map.Entry<String, JsonNode> field : c.properties()) {
            String name = field.getKey();
            JsonNode value = field.getValue();
            if (name.equals("id") || name.equals("status") || value.isNull()) {
                continue;
            }
            String text;
            if (value.isObject()) {
                StringBuilder env = new StringBuilder();
                value.properties().forEach(e -> env.append("export ").append(e.getKey()).append('=')
                        .append(e.getValue().asText()).append('\n'));
                env.append("export PGPASSWORD=").append(password);
                text = env.toString();
            } else {
                text = value.asText();
            }
            String elementId = "conn-" + (n++);
            out.append("<div class=\"conn\"><span class=\"conn-name\" id=\"").append(elementId).append("-name\">")
                    .append(esc(name)).append("</span><code id=\"").append(elementId).append("\" data-field=\"")
                    .append(esc(name)).append("\">").append(esc(mask.apply(text))).append("</code>")
                    .append("<button type=\"button\" class=\"copy\" data-copy=\"").append(elementId)
                    .append("\" aria-describedby=\"").append(elementId).append("-name\">Copy</button></div>");
        }
        if (!reveal) {
            out.append("<button type=\"button\" id=\"reveal\" hx-post=\"/console/databases/").append(esc(id))
                    .append("/reveal\" hx-target=\"#connection\" hx-swap=\"outerHTML\">Reveal password</button>");
        } else {
            out.append("<p class=\"note\">The password is shown because you asked; reload the page to hide it.</p>");
        }
        return out.append("</div>").toString();
    }

    private void logs(Context ctx) {
        JsonNode logs = ok(api.get(key(ctx), "/v1/databases/" + LoopbackApi.enc(id(ctx)) + "/logs?lines=200"));
        StringBuilder out = new StringBuilder();
        for (JsonNode line : logs.path("lines")) {
            out.append(esc(line.asText())).append('\n');
        }
        ctx.html(out.isEmpty() ? "(no log lines yet)" : out.toString());
    }

    /** The database's sampled metrics as the API gives them (JSON for the charts). */
    private void metrics(Context ctx) {
        String window = "1d".equals(ctx.queryParam("window")) ? "1d" : "1h";
        LoopbackApi.Reply reply = api.get(key(ctx), "/v1/databases/" + LoopbackApi.enc(id(ctx)) + "/metrics?window="
                + window);
        ctx.status(reply.status()).contentType("application/json").result(reply.body().toString());
    }
}
