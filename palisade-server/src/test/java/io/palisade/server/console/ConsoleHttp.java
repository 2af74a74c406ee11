package io.palisade.server.console;

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * A console session driven over plain HTTP, as a browser would (cookie, CSRF token from the page, Origin): for the
 * security and cross-tenant tests. Not thread-safe.
 */
public final class ConsoleHttp {
    private static final Pattern HIDDEN_TOKEN = Pattern.compile("name=\"_csrf\" value=\"([^\"]+)\"");
    private static final Pattern PAGE_TOKEN = Pattern.compile("X-CSRF-Token&quot;:&quot;([^&]+)&quot;");

    private final HttpClient http;
    private final String apiUrl;
    private String cookie;
    private String csrf;
    private Response lastSignIn;

    public record Response(int status, Map<String, java.util.List<String>> headers, String body) {
        public String header(String name) {
            return headers.entrySet().stream().filter(e -> e.getKey().equalsIgnoreCase(name))
                    .flatMap(e -> e.getValue().stream()).findFirst().orElse(null);
        }
    }

    private ConsoleHttp(String apiUrl, javax.net.ssl.SSLContext tls) {
        this.apiUrl = apiUrl;
        HttpClient.Builder builder = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5));
        if (tls != null) {
            builder.sslContext(tls);
        }
        this.http = builder.build();
    }

    /** Signs in with a key; fails unless the console accepted it. */
    public static ConsoleHttp signIn(String apiUrl, String key) {
        return signIn(apiUrl, key, null);
    }

    /** Signs in over HTTPS, trusting what {@code tls} trusts. */
    public static ConsoleHttp signIn(String apiUrl, String key, javax.net.ssl.SSLContext tls) {
        ConsoleHttp console = new ConsoleHttp(apiUrl, tls);
        Response signin = console.trySignIn(key);
        if (signin.status() != 303 || console.cookie == null) {
            throw new AssertionError("sign-in refused: " + signin.status() + " " + signin.body());
        }
        Response page = console.get("/console/databases");
        Matcher token = PAGE_TOKEN.matcher(page.body());
        if (!token.find()) {
            throw new AssertionError("no CSRF token on the databases page: " + page.body());
        }
        console.csrf = token.group(1);
        return console;
    }

    /** A browser without a session. */
    public static ConsoleHttp anonymous(String apiUrl) {
        return new ConsoleHttp(apiUrl, null);
    }

    /** The sign-in form, then its POST with the key; answers the POST. */
    public Response trySignIn(String key) {
        Response form = send("GET", "/console/signin", null, Map.of());
        String signinCookie = setCookie(form, "palisade_console_signin");
        Matcher token = HIDDEN_TOKEN.matcher(form.body());
        if (signinCookie == null || !token.find()) {
            throw new AssertionError("the sign-in form has no token: " + form);
        }
        Map<String, String> fields = new LinkedHashMap<>();
        fields.put("_csrf", token.group(1));
        fields.put("key", key);
        cookie = "palisade_console_signin=" + signinCookie;
        Response answer = send("POST", "/console/signin", fields, Map.of("Origin", apiUrl));
        lastSignIn = answer;
        String session = setCookie(answer, "palisade_console");
        cookie = session == null ? null : "palisade_console=" + session;
        return answer;
    }

    /** The answer to the last sign-in POST (its Set-Cookie says how the session cookie is marked). */
    public Response lastSignIn() {
        return lastSignIn;
    }

    public String csrf() {
        return csrf;
    }

    public String cookie() {
        return cookie;
    }

    public Response get(String path) {
        return send("GET", path, null, Map.of("HX-Request", "true"));
    }

    public Response page(String path) {
        return send("GET", path, null, Map.of());
    }

    /** A state-changing request as the console's own page sends it: token header and own Origin. */
    public Response post(String path, Map<String, String> form) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("Origin", apiUrl);
        headers.put("HX-Request", "true");
        if (csrf != null) {
            headers.put("X-CSRF-Token", csrf);
        }
        return send("POST", path, form, headers);
    }

    public Response send(String method, String path, Map<String, String> form, Map<String, String> headers) {
        try {
            HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(apiUrl + path))
                    .timeout(Duration.ofSeconds(90));
            if (cookie != null) {
                request.header("Cookie", cookie);
            }
            headers.forEach(request::header);
            if (form == null) {
                request.method(method, HttpRequest.BodyPublishers.noBody());
            } else {
                request.header("Content-Type", "application/x-www-form-urlencoded");
                request.method(method, HttpRequest.BodyPublishers.ofString(form.entrySet().stream()
                        .map(e -> enc(e.getKey()) + "=" + enc(e.getValue())).collect(Collectors.joining("&"))));
            }
            HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
            return new Response(response.statusCode(), response.headers().map(), response.body());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(method + " " + path + " failed", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static String setCookie(Response response, String name) {
        for (var entry : response.headers().entrySet()) {
            if (!entry.getKey().equalsIgnoreCase("set-cookie")) {
                continue;
            }
            for (String value : entry.getValue()) {
                if (value.startsWith(name + "=")) {
                    String v = value.substring(name.length() + 1, value.indexOf(';') < 0 ? value.length()
                            : value.indexOf(';'));
                    return v.isEmpty() ? null : v;
                }
            }
        }
        return null;
    }

    private static String enc(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }
}
