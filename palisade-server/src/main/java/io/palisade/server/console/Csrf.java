package io.palisade.server.console;

import io.javalin.http.Context;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

/**
 * Cross-site request forgery checks for the console's state-changing requests: the request must carry the session's
 * token (header {@code X-CSRF-Token}, which the page's htmx sends on every request, or form field {@code _csrf}), and
 * an {@code Origin} header, when the browser sends one, must be this server's own. Sign-in has no session yet: its form
 * carries a token that must match a short-lived cookie (double submit). Stateless.
 */
final class Csrf {
    static final String HEADER = "X-CSRF-Token";
    static final String FIELD = "_csrf";
    static final String SIGNIN_COOKIE = "palisade_console_signin";

    private Csrf() {}

    /** Null when the request may go on, else what is wrong (said to the caller with 403). */
    static String refusal(Context ctx, String expectedToken) {
        String origin = ctx.header("Origin");
        if (origin != null && !sameOrigin(ctx, origin)) {
            return "the request came from another site (Origin " + origin + "); the console accepts only its own pages";
        }
        String site = ctx.header("Sec-Fetch-Site");
        if (site != null && !site.equals("same-origin") && !site.equals("none")) {
            return "the request came from another site (Sec-Fetch-Site " + site + ")";
        }
        String token = ctx.header(HEADER);
        if (token == null) {
            token = ctx.formParam(FIELD);
        }
        if (token == null || token.isEmpty()) {
            return "the request carries no CSRF token; reload the page and try again";
        }
        if (!MessageDigest.isEqual(token.getBytes(StandardCharsets.UTF_8),
                expectedToken.getBytes(StandardCharsets.UTF_8))) {
            return "the request's CSRF token does not match this session; reload the page and try again";
        }
        return null;
    }

    private static boolean sameOrigin(Context ctx, String origin) {
        try {
            URI uri = URI.create(origin);
            String host = ctx.header("Host");
            if (host == null || uri.getHost() == null) {
                return false;
            }
            String authority = uri.getPort() < 0 ? uri.getHost() : uri.getHost() + ":" + uri.getPort();
            return authority.equalsIgnoreCase(host) && uri.getScheme().equalsIgnoreCase(ctx.scheme());
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
