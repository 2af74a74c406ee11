package io.palisade.server.console;

import static io.palisade.server.console.Html.esc;
import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.http.Context;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.FileStore;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * The host page: the rungs table and isolation probes from {@code /v1/health}, the host's capacity (CPUs, memory and
 * the data directory's disk, used and free) and the signed-in account's instances by state. Thread-safe (stateless).
 */
public final class HostPage {
    private final LoopbackApi api;
    private final Path dataDir;

    public HostPage(LoopbackApi api, Path dataDir) {
        this.api = requireNonNull(api, "api is null");
        this.dataDir = requireNonNull(dataDir, "dataDir is null");
    }

    void page(Context ctx) {
        JsonNode health = api.get(null, "/v1/health").body();
        StringBuilder body = new StringBuilder("<h1>Host</h1>");
        body.append("<p>Status <strong>").append(esc(health.path("status").asText())).append("</strong> on host <code>")
                .append(esc(health.path("host").asText())).append("</code>; new databases default to the <code>")
                .append(esc(health.path("default_isolation").asText())).append("</code> rung.</p>");
        body.append("<h2>Rungs</h2><div class=\"scroll\"><table id=\"rungs\"><thead><tr><th scope=\"col\">Rung</th>")
                .append("<th scope=\"col\">Available</th><th scope=\"col\">Isolation</th>")
                .append("<th scope=\"col\">Suspend</th>")
                .append("</tr></thead><tbody>");
        for (JsonNode rung : health.path("rungs")) {
            body.append("<tr><td>").append(esc(rung.path("name").asText())).append("</td><td>")
                    .append(rung.path("available").asBoolean() ? "yes" : "no").append("</td><td>")
                    .append(esc(rung.path("isolation").asText())).append("</td><td>")
                    .append(esc(rung.path("suspend").asText())).append("</td></tr>");
        }
        body.append("</tbody></table></div><h2>Isolation drivers</h2><ul>");
        for (JsonNode probe : health.path("isolation")) {
            body.append("<li><code>").append(esc(probe.path("name").asText())).append("</code>: ")
                    .append(probe.path("usable").asBoolean() ? "usable" : "not usable")
                    .append(probe.path("default").asBoolean() ? " (default)" : "").append(" — ")
                    .append(esc(probe.path("reason").asText(""))).append("</li>");
        }
        body.append("</ul>").append(capacity()).append(instances(ctx));
        ctx.html(Html.page("Host", ConsoleRoutes.current(ctx).csrfToken(), body.toString()));
    }

    private String capacity() {
        StringBuilder out = new StringBuilder("<h2>Capacity</h2><table id=\"capacity\"><thead><tr><th scope=\"col\">")
                .append("Resource</th><th scope=\"col\">Total</th><th scope=\"col\">Used</th><th scope=\"col\">Free")
                .append("</th></tr></thead><tbody>");
        var os = ManagementFactory.getOperatingSystemMXBean();
        out.append("<tr><td>CPUs</td><td>").append(os.getAvailableProcessors()).append("</td><td>load ")
                .append(String.format(java.util.Locale.ROOT, "%.2f", os.getSystemLoadAverage()))
                .append("</td><td></td></tr>");
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            long total = sun.getTotalMemorySize();
            long free = sun.getFreeMemorySize();
            row(out, "Memory", total, free);
        }
        try {
            FileStore store = Files.getFileStore(dataDir);
            row(out, "Disk (data directory)", store.getTotalSpace(), store.getUsableSpace());
        } catch (IOException e) {
            out.append("<tr><td>Disk</td><td colspan=\"3\">").append(esc("cannot read: " + e.getMessage()))
                    .append("</td></tr>");
        }
        return out.append("</tbody></table>").toString();
    }

    private static void row(StringBuilder out, String name, long total, long free) {
        out.append("<tr><td>").append(name).append("</td><td>").append(Html.bytes(total)).append("</td><td>")
                .append(Html.bytes(total - free)).append("</td><td>").append(Html.bytes(free)).append("</td></tr>");
    }

    private String instances(Context ctx) {
        JsonNode list = DatabasePages.ok(api.get(DatabasePages.key(ctx), "/v1/databases"));
        Map<String, Integer> byState = new TreeMap<>();
        for (JsonNode db : list.path("databases")) {
            byState.merge(db.path("status").asText(), 1, Integer::sum);
        }
        StringBuilder out = new StringBuilder("<h2>Your instances</h2><ul id=\"instances\">");
        out.append("<li>running: <strong data-count=\"running\">").append(byState.getOrDefault("running", 0))
                .append("</strong></li><li>suspended: <strong data-count=\"suspended\">")
                .append(byState.getOrDefault("suspended", 0)).append("</strong></li>");
        byState.forEach((state, count) -> {
            if (!state.equals("running") && !state.equals("suspended")) {
                out.append("<li>").append(esc(state)).append(": ").append(count).append("</li>");
            }
        });
        return out.append("</ul>").toString();
    }
}
