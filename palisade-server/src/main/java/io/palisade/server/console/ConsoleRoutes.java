package io.palisade.server.console;

import static io.palisade.server.console.Html.esc;
import static java.util.Objects.requireNonNull;

import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.Cookie;
import io.javalin.http.Handler;
import io.javalin.http.SameSite;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The web console at {@code /console} on the API port: security headers on every response, the session check, CSRF on
 * every state-changing request, sign-in and sign-out, and the static assets; the pages themselves are
 * {@link DatabasePages}, {@link SqlEditor} and {@link HostPage}. The {@code /v1} API is untouched: it never accepts the
 * console's cookie. Thread-safe.
 */
public final class ConsoleRoutes {
    private static final Logger log = LoggerFactory.getLogger(ConsoleRoutes.class);
    static final String SESSION = "console.session";

    /** No inline script, no eval, nothing from elsewhere; uPlot sets styles from script (CSSOM), which CSP allows. */
    static final String CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    /** The assets the console serves, by name: our own files and the WebJars' htmx and uPlot. */
    private static final Map<String, Asset> ASSETS = Map.of(
            "htmx.min.js", new Asset("META-INF/resources/webjars/htmx.org/2.0.4/dist/htmx.min.js", "text/javascript"),
            "uPlot.iife.min.js", new Asset("META-INF/resources/webjars/uplot/1.6.30/dist/uPlot.iife.min.js",
                    "text/javascript"),
            "uPlot.min.css", new Asset("META-INF/resources/webjars/uplot/1.6.30/dist/uPlot.min.css", "text/css"),
            "console.js", new Asset("io/palisade/server/console/console.js", "text/javascript"),
            "console.css", new Asset("io/palisade/server/console/console.css", "text/css"));

    private record Asset(String resource, String contentType) {}

    private final LoopbackApi api;
    private final ConsoleSessions sessions;
    private final boolean secureCookies;
    private final DatabasePages databases;
    private final SqlEditor sql;
    private final HostPage host;

    /**
     * @param secureCookies mark the session cookie {@code Secure} (the API serves HTTPS)
     * @param sqlLimits the broker's row and time limits, shown in the SQL editor
     */
    public ConsoleRoutes(LoopbackApi api, ConsoleSessions sessions, boolean secureCookies, HostPage host,
            SqlEditor.Limits sqlLimits) {
        this.api = requireNonNull(api, "api is null");
        this.sessions = requireNonNull(sessions, "sessions is null");
        this.secureCookies = secureCookies;
        this.host = requireNonNull(host, "host is null");
        this.databases = new DatabasePages(api);
        this.sql = new SqlEditor(api, requireNonNull(sqlLimits, "sqlLimits is null"));
    }

    /** Adds the console's routes to an app that has not started yet. */
    public void register(Javalin app) {
        app.before("/console", this::guard);
        app.before("/console/*", this::guard);
        app.get("/console", ctx -> ctx.redirect(session(ctx).isPresent() ? "/console/databases" : "/console/signin"));
        app.get("/console/signin", this::signinPage);
        app.post("/console/signin", this::signin);
        app.post("/console/signout", this::signout);
        app.get("/console/assets/{name}", this::asset);
        databases.register(app, ConsoleRoutes::safely);
        sql.register(app, ConsoleRoutes::safely);
        app.get("/console/host", safely(host::page));
    }

    /** Headers for every console response; then: a session (except sign-in and assets) and CSRF on every POST. */
    private void guard(Context ctx) {
        ctx.header("Content-Security-Policy", CSP);
        ctx.header("X-Content-Type-Options", "nosniff");
        ctx.header("X-Frame-Options", "DENY");
        ctx.header("Referrer-Policy", "same-origin"); // not no-referrer: Chrome then sends "Origin: null"
        ctx.header("Cache-Control", "no-store");
        String path = ctx.path();
        String type = ctx.contentType();
        if (!ctx.method().name().equals("GET") && !ctx.method().name().equals("HEAD") && type != null
                && !type.toLowerCase(java.util.Locale.ROOT).startsWith("application/x-www-form-urlencoded")) {
            // the console's forms are URL-encoded; a multipart body would be spooled to disk, of any size, before
            // the form fields (the CSRF token) could be checked, and sign-in needs no session to get that far
            ctx.skipRemainingHandlers();
            ctx.status(415).html(Html.problem("the console accepts forms as application/x-www-form-urlencoded only,"
                    + " not " + type));
            return;
        }
        if (path.startsWith("/console/assets/") || path.equals("/console/signin") || path.equals("/console")) {
            if (path.startsWith("/console/assets/")) {
                ctx.header("Cache-Control", "max-age=300");
            }
            return;
        }
        Optional<ConsoleSessions.Session> session = session(ctx);
        if (session.isEmpty()) {
            ctx.skipRemainingHandlers();
            if (ctx.header("HX-Request") != null) {
                ctx.header("HX-Redirect", "/console/signin");
                ctx.status(401).html(Html.problem("your console session has ended; sign in again"));
            } else if (ctx.method().name().equals("GET")) {
                ctx.redirect("/console/signin");
            } else {
                ctx.status(401).html(Html.page("Signed out", null, Html.problem("sign in first")));
            }
            return;
        }
        ctx.attribute(SESSION, session.get());
        if (!ctx.method().name().equals("GET") && !ctx.method().name().equals("HEAD")) {
            String refusal = Csrf.refusal(ctx, session.get().csrfToken());
            if (refusal != null) {
                ctx.skipRemainingHandlers();
                ctx.status(403).html(Html.problem(refusal));
            }
        }
    }

    private Optional<ConsoleSessions.Session> session(Context ctx) {
        return sessions.find(ctx.cookie(ConsoleSessions.COOKIE), ctx.header(Html.POLL_HEADER) == null);
    }

    static ConsoleSessions.Session current(Context ctx) {
        ConsoleSessions.Session session = ctx.attribute(SESSION);
        if (session == null) {
            throw new IllegalStateException("no console session on " + ctx.path());
        }
        return session;
    }

    private void signinPage(Context ctx) {
        signinPage(ctx, 200, null);
    }

    private void signinPage(Context ctx, int status, String problem) {
        String token = ConsoleSessions.randomToken();
        ctx.cookie(cookie(Csrf.SIGNIN_COOKIE, token, 600));
        String body = "<h1>Sign in</h1>"
                + "<p>Paste an API key. It stays on the server for this browser session only; it is never put in a"
                + " page, a URL or a log.</p>"
                + (problem == null ? "" : Html.problem(problem))
                + "<form method=\"post\" action=\"/console/signin\" class=\"signin\">"
                + "<input type=\"hidden\" name=\"" + Csrf.FIELD + "\" value=\"" + esc(token) + "\">"
                + "<label for=\"key\">API key</label>"
                + "<input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"off\" required autofocus>"
                + "<button type=\"submit\">Sign in</button></form>";
        ctx.status(status).html(Html.page("Sign in", null, body));
    }

    private void signin(Context ctx) {
        String expected = ctx.cookie(Csrf.SIGNIN_COOKIE);
        String refusal = expected == null ? "the sign-in form has expired; load it again" : Csrf.refusal(ctx, expected);
        if (refusal != null) {
            signinPage(ctx, 403, refusal);
            return;
        }
        String key = ctx.formParam("key");
        if (key == null || key.isBlank()) {
            signinPage(ctx, 400, "paste an API key");
            return;
        }
        if (!key.strip().chars().allMatch(c -> c >= 0x20 && c < 0x7f)) {
            // an HTTP header cannot carry it, and the HTTP client's refusal would quote it into the log
            signinPage(ctx, 400, "an API key is one line of printable ASCII; paste it again");
            return;
        }
        LoopbackApi.Reply check;
        try {
            check = api.get(key.strip(), "/v1/databases");
        } catch (PalisadeException e) {
            signinPage(ctx, 502, e.getMessage());
            return;
        }
        if (!check.ok()) {
            signinPage(ctx, check.status() == 401 ? 401 : check.status(), check.problem());
            return;
        }
        ctx.removeCookie(Csrf.SIGNIN_COOKIE, "/console");
        sessions.close(ctx.cookie(ConsoleSessions.COOKIE)); // the browser's previous session, if any, ends
        ctx.cookie(cookie(ConsoleSessions.COOKIE, sessions.open(key.strip()), -1));
        log.info("console: a browser signed in ({} session(s) open)", sessions.size());
        ctx.redirect("/console/databases", io.javalin.http.HttpStatus.SEE_OTHER);
    }

    private void signout(Context ctx) {
        sessions.close(ctx.cookie(ConsoleSessions.COOKIE));
        ctx.removeCookie(ConsoleSessions.COOKIE, "/console");
        ctx.redirect("/console/signin", io.javalin.http.HttpStatus.SEE_OTHER);
    }

    private Cookie cookie(String name, String value, int maxAgeSeconds) {
        Cookie cookie = new Cookie(name, value, "/console", maxAgeSeconds, secureCookies);
        cookie.setHttpOnly(true);
        cookie.setSameSite(SameSite.STRICT);
        return cookie;
    }

    private void asset(Context ctx) throws IOException {
        Asset asset = ASSETS.get(ctx.pathParam("name"));
        InputStream in = asset == null ? null
                : ConsoleRoutes.class.getClassLoader().getResourceAsStream(asset.resource());
        if (in == null) {
            ctx.status(404).contentType("text/plain").result("no such console asset");
            return;
        }
        try (in) {
            ctx.contentType(asset.contentType() + "; charset=utf-8").result(in.readAllBytes());
        }
    }

    /** Runs a page handler; a failure shows its message as a problem (a fragment for htmx, else a page). */
    static Handler safely(Handler handler) {
        return ctx -> {
            try {
                handler.handle(ctx);
            } catch (PalisadeException e) {
                fail(ctx, e.errorCode().httpStatus(), e.getMessage());
            } catch (RuntimeException e) {
                log.error("console: {} {} failed unexpectedly", ctx.method(), ctx.path(), e);
                fail(ctx, 500, "internal error; the server log has details (" + ctx.path() + ")");
            }
        };
    }

    /** Answers with a problem: in place for htmx requests, else as a page. */
    static void fail(Context ctx, int status, String detail) {
        ctx.status(status);
        if (ctx.header("HX-Request") != null) {
            ctx.html(Html.problem(detail));
            return;
        }
        ConsoleSessions.Session session = ctx.attribute(SESSION);
        String title = switch (status) {
            case 404 -> "Not found";
            case 401 -> "Sign in";
            default -> "Problem";
        };
        ctx.html(Html.page(title, session == null ? null : session.csrfToken(),
                "<h1>" + esc(title) + "</h1>" + Html.problem(detail)
                        + "<p><a href=\"/console/databases\">Back to your databases</a></p>"));
    }
}
