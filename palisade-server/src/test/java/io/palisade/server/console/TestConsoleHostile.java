package io.palisade.server.console;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.core.read.ListAppender;
import io.palisade.server.TestingPalisade;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.slf4j.LoggerFactory;

/**
 * Attacks on the console found in review, each against a live server: what a hostile or careless browser sends at
 * sign-in, and what happens to sessions.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestConsoleHostile {
    private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
    private TestingPalisade palisade;
    private String key;
    private String database;

    @BeforeAll
    void open() {
        logs.start();
        ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).addAppender(logs);
        palisade = TestingPalisade.requiring("process", Map.of());
        key = palisade.newAccount("console-hostile");
    }

    @AfterAll
    void close() {
        ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).detachAppender(logs);
        if (palisade != null) {
            palisade.close();
        }
    }

    @Test
    void aKeyAnHttpHeaderCannotCarryIsRefusedAndNeverLogged() {
        // a key pasted with a second line, or with a character outside Latin-1: the HTTP client's refusal quotes it
        for (String typed : List.of(key + "\nsecond line", key + "\u20ac", "x\r\n" + key)) {
            ConsoleHttp.Response answer = ConsoleHttp.anonymous(palisade.apiUrl()).trySignIn(typed);
            assertThat(answer.status()).as(answer.body()).isEqualTo(400);
            assertThat(answer.body()).contains("printable ASCII").doesNotContain(key);
        }
        List<String> lines = logs.list.stream()
                .map(e -> e.getFormattedMessage() + " " + messages(e.getThrowableProxy())).toList();
        assertThat(lines).noneMatch(line -> line.contains(key));
        // the real key still signs in
        assertThat(ConsoleHttp.signIn(palisade.apiUrl(), key).csrf()).isNotEmpty();
    }

    @Test
    void signingInAgainEndsTheBrowsersPreviousSession() {
        ConsoleHttp first = ConsoleHttp.signIn(palisade.apiUrl(), key);
        assertThat(first.page("/console/databases").status()).isEqualTo(200);
        // the same browser signs in again (e.g. with another account's key): it presents its current session cookie
        ConsoleHttp browser = ConsoleHttp.anonymous(palisade.apiUrl());
        ConsoleHttp.Response form = browser.send("GET", "/console/signin", null, Map.of());
        String signinCookie = form.header("Set-Cookie");
        signinCookie = signinCookie.substring(0, signinCookie.indexOf(';'));
        java.util.regex.Matcher token = java.util.regex.Pattern.compile("name=\"_csrf\" value=\"([^\"]+)\"")
                .matcher(form.body());
        assertThat(token.find()).isTrue();
        ConsoleHttp.Response again = browser.send("POST", "/console/signin", Map.of("_csrf", token.group(1), "key",
                palisade.newAccount("console-hostile-2")), Map.of("Origin", palisade.apiUrl(), "Cookie",
                first.cookie() + "; " + signinCookie));
        assertThat(again.status()).as(again.body()).isEqualTo(303);
        assertThat(again.header("Set-Cookie")).doesNotContain(first.cookie());
        ConsoleHttp.Response old = first.page("/console/databases");
        assertThat(old.status()).as("the previous session's cookie after signing in again").isEqualTo(302);
        assertThat(old.header("Location")).isEqualTo("/console/signin");
    }

    /** A running database of the test's account, made once. */
    private String database() {
        if (database == null) {
            var created = palisade.request("POST", "/v1/databases", "{\"isolation\":\"process\"}", key);
            assertThat(created.status()).as(created.body()).isIn(201, 202);
            database = created.json().path("id").asText();
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(60)).until(() -> palisade.request(
                    "GET", "/v1/databases/" + database, null, key).json().path("status").asText().equals("running"));
        }
        return database;
    }

    @Test
    void whatATenantWritesIntoItsLogIsInertInTheLogTail() {
        String id = database();
        ConsoleHttp console = ConsoleHttp.signIn(palisade.apiUrl(), key);
        String hostile = "<img src=x onerror=alert(1)><div hx-get=\"/console/signout\" hx-trigger=\"load\">";
        ConsoleHttp.Response failed = console.post("/console/databases/" + id + "/sql",
                Map.of("sql", "select 1/0 as \"" + hostile.replace("\"", "\"\"") + "\""));
        assertThat(failed.body()).as("the editor's error").contains("22012");
        ConsoleHttp.Response raised = console.post("/console/databases/" + id + "/sql", Map.of("sql",
                "do $$ begin raise warning '%', '" + hostile + "`${x}'; end $$"));
        assertThat(raised.status()).as(raised.body()).isEqualTo(200);
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(30)).untilAsserted(() -> {
            String tail = console.get("/console/databases/" + id + "/logs").body();
            assertThat(tail).contains("division by zero", "&lt;img src=x onerror=alert(1)&gt;&lt;div hx-get=",
                    "&#96;${x}").doesNotContain("<img", "<div");
        });
    }

    @Test
    void aHugeQueryResultIsCutNotRenderedWhole() {
        String id = database();
        ConsoleHttp console = ConsoleHttp.signIn(palisade.apiUrl(), key);
        // 8 MB of quotes: within the broker's 10 MiB response limit, ~40 MB once escaped (&#39; per character)
        ConsoleHttp.Response result = console.post("/console/databases/" + id + "/sql",
                Map.of("sql", "select repeat('''', 4000000) as a, repeat('''', 4000000) as b"));
        assertThat(result.status()).as(result.body().substring(0, Math.min(500, result.body().length())))
                .isEqualTo(200);
        assertThat(result.body().length()).as("rendered HTML").isLessThan(4 * 1024 * 1024);
        assertThat(result.body()).contains("data-cut", "1 row", "1 of 1 rows");
        // small results are whole
        ConsoleHttp.Response small = console.post("/console/databases/" + id + "/sql",
                Map.of("sql", "select g from generate_series(1, 500) g"));
        assertThat(small.body()).contains("500 rows", "<td>500</td>").doesNotContain("data-cut");
    }

    @Test
    void aMultipartBodyIsRefusedBeforeItIsRead() {
        // the sign-in form needs no session: a multipart body was parsed (Javalin spools every part to the temporary
        // directory, with no size limit) before its fields were checked; here it is even a working sign-in
        ConsoleHttp browser = ConsoleHttp.anonymous(palisade.apiUrl());
        ConsoleHttp.Response form = browser.send("GET", "/console/signin", null, Map.of());
        String signinCookie = form.header("Set-Cookie");
        signinCookie = signinCookie.substring(0, signinCookie.indexOf(';'));
        java.util.regex.Matcher token = java.util.regex.Pattern.compile("name=\"_csrf\" value=\"([^\"]+)\"")
                .matcher(form.body());
        assertThat(token.find()).isTrue();
        String body = "--b\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n" + token.group(1)
                + "\r\n--b\r\nContent-Disposition: form-data; name=\"key\"; filename=\"big.bin\"\r\n\r\n" + key
                + "\r\n--b--\r\n";
        try {
            java.net.http.HttpResponse<String> answer = java.net.http.HttpClient.newHttpClient().send(
                    java.net.http.HttpRequest.newBuilder(java.net.URI.create(palisade.apiUrl() + "/console/signin"))
                            .header("Cookie", signinCookie).header("Origin", palisade.apiUrl())
                            .header("Content-Type", "multipart/form-data; boundary=b")
                            .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertThat(answer.statusCode()).as(answer.body()).isEqualTo(415);
            assertThat(answer.headers().allValues("Set-Cookie")).noneMatch(c -> c.startsWith(ConsoleSessions.COOKIE));
        } catch (java.io.IOException | InterruptedException e) {
            throw new AssertionError(e);
        }
        // with a session too: the CSRF check reads the form field only from a URL-encoded body
        ConsoleHttp console = ConsoleHttp.signIn(palisade.apiUrl(), key);
        ConsoleHttp.Response post = console.send("POST", "/console/signout", null, Map.of("Origin", palisade.apiUrl(),
                "X-CSRF-Token", console.csrf(), "Content-Type", "multipart/form-data; boundary=b"));
        assertThat(post.status()).isEqualTo(415);
        assertThat(console.post("/console/signout", Map.of()).status()).as("a URL-encoded form").isEqualTo(303);
    }

    private static String messages(IThrowableProxy proxy) {
        return proxy == null ? "" : proxy.getMessage() + " " + messages(proxy.getCause());
    }
}
