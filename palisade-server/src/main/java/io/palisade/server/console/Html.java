package io.palisade.server.console;

import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Locale;

/**
 * The console's HTML: escaping of every value that is not ours (labels, query results, log lines, error text) and the
 * page frame. Nothing here emits a script or an event-handler attribute: behaviour comes from {@code console.js} and
 * htmx attributes, so the Content-Security-Policy can forbid inline scripts. Stateless.
 */
final class Html {
    /**
     * htmx settings: no eval (the CSP forbids it anyway), no inline indicator styles, no scripts from swapped content,
     * requests to this origin only, and error responses are swapped in so the problem's detail shows where the action
     * was taken.
     */
    private static final String HTMX_CONFIG = "{\"allowEval\":false,\"includeIndicatorStyles\":false,"
            + "\"allowScriptTags\":false,\"selfRequestsOnly\":true,\"historyCacheSize\":0,"
            + "\"responseHandling\":[{\"code\":\"204\",\"swap\":false},{\"code\":\"[23]..\",\"swap\":true},"
            + "{\"code\":\"[45]..\",\"swap\":true,\"error\":false}]}";

    /** Sent by the page's automatic refreshes (not user activity: they do not keep a session alive). */
    static final String POLL_HEADER = "X-Console-Poll";

    /** Attributes for an element that refreshes itself every {@code seconds} (and on {@code extra} triggers). */
    static String poll(String url, int seconds, String extraTriggers) {
        return "hx-get=\"" + url + "\" hx-trigger=\"" + (extraTriggers.isEmpty() ? "" : extraTriggers + ", ") + "every "
                + seconds + "s\" hx-headers=\"" + esc("{\"" + POLL_HEADER + "\":\"true\"}") + "\"";
    }

    private Html() {}

    /** Text made safe for element content and quoted attribute values. */
    static String esc(Object value) {
        if (value == null) {
            return "";
        }
        String text = value.toString();
        StringBuilder out = new StringBuilder(text.length() + 16);
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '&' -> out.append("&amp;");
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&#39;");
                case '`' -> out.append("&#96;");
                default -> out.append(c);
            }
        }
        return out.toString();
    }

    /**
     * A whole page. {@code csrfToken} is null on the sign-in page (no session, no navigation).
     */
    static String page(String title, String csrfToken, String body) {
        StringBuilder html = new StringBuilder(4096 + body.length());
        html.append("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
                .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
                .append("<meta name=\"htmx-config\" content=\"").append(esc(HTMX_CONFIG)).append("\">")
                .append("<title>").append(esc(title)).append(" · palisade console</title>")
                .append("<link rel=\"stylesheet\" href=\"/console/assets/uPlot.min.css\">")
                .append("<link rel=\"stylesheet\" href=\"/console/assets/console.css\">")
                .append("<script src=\"/console/assets/htmx.min.js\" defer></script>")
                .append("<script src=\"/console/assets/uPlot.iife.min.js\" defer></script>")
                .append("<script src=\"/console/assets/console.js\" defer></script>")
                .append("</head><body");
        if (csrfToken != null) {
            html.append(" hx-headers=\"").append(esc("{\"" + Csrf.HEADER + "\":\"" + csrfToken + "\"}")).append("\"");
        }
        html.append("><a class=\"skip\" href=\"#main\">Skip to content</a>")
                .append("<header><span class=\"brand\">palisade</span>");
        if (csrfToken != null) {
            html.append("<nav aria-label=\"Main\"><a href=\"/console/databases\">Databases</a>")
                    .append("<a href=\"/console/host\">Host</a>")
                    .append("<form method=\"post\" action=\"/console/signout\" class=\"signout\">")
                    .append("<input type=\"hidden\" name=\"").append(Csrf.FIELD).append("\" value=\"")
                    .append(esc(csrfToken)).append("\"><button type=\"submit\">Sign out</button></form></nav>");
        }
        html.append("</header><main id=\"main\" tabindex=\"-1\">").append(body).append("</main></body></html>\n");
        return html.toString();
    }

    /** A problem shown in place of a result: the API's detail, never a stack trace. */
    static String problem(String detail) {
        return "<p class=\"problem\" role=\"alert\">" + esc(detail) + "</p>";
    }

    static String done(String text) {
        return "<span class=\"done\">" + esc(text) + "</span>";
    }

    /** {@code 2026-12-02T05:30:01.123Z} → {@code 2026-12-02 05:30:01Z}; anything else as given. */
    static String time(String iso) {
        if (iso == null || iso.isEmpty() || iso.equals("null")) {
            return "";
        }
        try {
            Instant instant = Instant.parse(iso);
            String text = instant.truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
            return text.replace('T', ' ');
        } catch (DateTimeParseException e) {
            return iso;
        }
    }

    static String duration(long seconds) {
        Duration d = Duration.ofSeconds(Math.max(0, seconds));
        if (d.toDays() > 0) {
            return d.toDays() + "d " + d.toHoursPart() + "h";
        }
        if (d.toHours() > 0) {
            return d.toHours() + "h " + d.toMinutesPart() + "m";
        }
        if (d.toMinutes() > 0) {
            return d.toMinutes() + "m " + d.toSecondsPart() + "s";
        }
        return d.toSeconds() + "s";
    }

    static String bytes(long bytes) {
        if (bytes < 0) {
            return "";
        }
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.1f %s", value, units[unit]);
    }
}
