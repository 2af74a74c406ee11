package io.palisade.server.console;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.palisade.server.TestingPalisade;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.openqa.selenium.By;
import org.openqa.selenium.Keys;
import org.openqa.selenium.NoAlertPresentException;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.support.ui.WebDriverWait;
import org.slf4j.LoggerFactory;

/**
 * The console's defences against a real server and a real browser: a Content-Security-Policy without inline scripts on
 * every page (and no inline script or handler in any page), the session cookie HttpOnly and SameSite=Strict, CSRF (no
 * token, a wrong token, another site's Origin: refused, nothing changes), the {@code /v1} API still Bearer-only, the
 * API key in no page, response, URL or log line, and hostile label values, error details and query results rendered
 * inert (no script runs, no element is injected).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TestConsoleSecurity {
    private static final String HOSTILE = "<img src=x onerror=\"window.xss=1\"></script><script>window.xss=2</script>";
    private static final Pattern INLINE_SCRIPT =
            Pattern.compile("<script(?![^>]*\\ssrc=)[^>]*>", Pattern.CASE_INSENSITIVE);
    private static final Pattern INLINE_HANDLER = Pattern.compile("<[^>]+\\son[a-z]+\\s*=", Pattern.CASE_INSENSITIVE);

    private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
    private final List<String> seen = new ArrayList<>();
    private TestingPalisade palisade;
    private TestingBrowser browser;
    private ChromeDriver driver;
    private String key;
    private String id;

    @BeforeAll
    void open() {
        logs.start();
        ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).addAppender(logs);
        browser = TestingBrowser.open();
        driver = browser.driver();
        palisade = TestingPalisade.requiring("process", Map.of());
        key = palisade.newAccount("console-security");
        var created = palisade.request("POST", "/v1/databases", "{\"label\":\"hostile\",\"isolation\":\"process\","
                + "\"labels\":{\"note\":" + json(HOSTILE) + "}}", key);
        assertThat(created.status()).as(created.body()).isIn(201, 202);
        id = created.json().path("id").asText();
    }

    @AfterAll
    void close() {
        ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).detachAppender(logs);
        if (browser != null) {
            browser.close();
        }
        if (palisade != null) {
            palisade.close();
        }
    }

    private ConsoleHttp console() {
        return ConsoleHttp.signIn(palisade.apiUrl(), key);
    }

    private ConsoleHttp.Response record(ConsoleHttp.Response response) {
        seen.add(response.headers().toString());
        seen.add(response.body());
        return response;
    }

    @Test
    @Order(1)
    void everyPageHasTheCspAndNoInlineScript() {
        ConsoleHttp console = console();
        for (String path : List.of("/console/signin", "/console/databases", "/console/databases/" + id,
                "/console/databases/" + id + "/sql", "/console/host", "/console/databases/no-such-db")) {
            ConsoleHttp.Response page = record(console.page(path));
            assertThat(page.status()).as(path).isIn(200, 404);
            String csp = page.header("Content-Security-Policy");
            assertThat(csp).as(path).contains("script-src 'self'", "default-src 'none'", "frame-ancestors 'none'")
                    .doesNotContain("unsafe-inline", "unsafe-eval");
            assertThat(page.header("X-Content-Type-Options")).isEqualTo("nosniff");
            assertThat(page.header("Cache-Control")).isEqualTo("no-store");
            assertThat(INLINE_SCRIPT.matcher(page.body()).find()).as("inline <script> on %s", path).isFalse();
            assertThat(INLINE_HANDLER.matcher(page.body()).find()).as("inline event handler on %s", path).isFalse();
        }
        // the hostile label value arrives escaped
        String page = console.page("/console/databases/" + id).body();
        assertThat(page).doesNotContain(HOSTILE).contains("&lt;img src=x onerror=&quot;window.xss=1&quot;&gt;");
    }

    @Test
    @Order(2)
    void theSessionCookieIsHttpOnlyAndStrict() {
        ConsoleHttp console = ConsoleHttp.anonymous(palisade.apiUrl());
        ConsoleHttp.Response signin = record(console.trySignIn(key));
        String cookie = signin.headers().entrySet().stream().filter(e -> e.getKey().equalsIgnoreCase("set-cookie"))
                .flatMap(e -> e.getValue().stream()).filter(c -> c.startsWith(ConsoleSessions.COOKIE + "="))
                .findFirst().orElseThrow();
        assertThat(cookie).contains("HttpOnly", "SameSite=Strict", "Path=/console").doesNotContain(key);
        assertThat(signin.header("Location")).isEqualTo("/console/databases");
    }

    @Test
    @Order(3)
    void stateChangesNeedTheTokenAndOwnOrigin() {
        ConsoleHttp console = console();
        String restart = "/console/databases/" + id + "/restart";
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("Origin", palisade.apiUrl());
        assertThat(record(console.send("POST", restart, Map.of(), headers)).status()).as("no token").isEqualTo(403);
        headers.put("X-CSRF-Token", "wrong-" + console.csrf());
        assertThat(record(console.send("POST", restart, Map.of(), headers)).status()).as("wrong token")
                .isEqualTo(403);
        headers.put("X-CSRF-Token", console.csrf());
        headers.put("Origin", "http://evil.example");
        assertThat(record(console.send("POST", restart, Map.of(), headers)).status()).as("other site").isEqualTo(403);
        headers.put("Origin", palisade.apiUrl());
        headers.put("Sec-Fetch-Site", "cross-site");
        assertThat(record(console.send("POST", restart, Map.of(), headers)).status()).as("cross-site fetch")
                .isEqualTo(403);
        // nothing was created by a refused create either
        int before = palisade.request("GET", "/v1/databases", null, key).json().path("databases").size();
        assertThat(record(console.send("POST", "/console/databases", Map.of("label", "forged", "isolation",
                "process"), Map.of("Origin", palisade.apiUrl()))).status()).isEqualTo(403);
        assertThat(palisade.request("GET", "/v1/databases", null, key).json().path("databases").size())
                .isEqualTo(before);
        // the token in the field works as well as in the header (plain forms)
        ConsoleHttp.Response ok = record(console.post(restart, Map.of()));
        assertThat(ok.status()).as(ok.body()).isEqualTo(200);
        assertThat(ok.body()).contains("Done: restart");
        // sign-in without the form's token is refused too
        ConsoleHttp.Response forged = record(ConsoleHttp.anonymous(palisade.apiUrl()).send("POST", "/console/signin",
                Map.of("key", key), Map.of("Origin", palisade.apiUrl())));
        assertThat(forged.status()).isEqualTo(403);
        assertThat(forged.header("Set-Cookie") == null
                || !forged.header("Set-Cookie").startsWith(ConsoleSessions.COOKIE + "=")).isTrue();
    }

    @Test
    @Order(4)
    void theApiStaysBearerOnlyAndSignOutEndsTheSession() {
        ConsoleHttp console = console();
        ConsoleHttp.Response api = console.send("GET", "/v1/databases", null, Map.of());
        assertThat(api.status()).as("/v1 with only the console's cookie").isEqualTo(401);
        assertThat(api.body()).doesNotContain(id);
        assertThat(record(console.post("/console/signout", Map.of())).status()).isEqualTo(303);
        ConsoleHttp.Response after = console.page("/console/databases/" + id);
        assertThat(after.status()).isEqualTo(302);
        assertThat(after.header("Location")).isEqualTo("/console/signin");
        assertThat(after.body()).doesNotContain(id);
    }

    @Test
    @Order(5)
    void hostileValuesAreInertInTheBrowser() {
        driver.get(palisade.apiUrl() + "/console/signin");
        WebElement field = driver.findElement(By.id("key"));
        field.sendKeys(key);
        field.sendKeys(Keys.ENTER);
        WebDriverWait wait = new WebDriverWait(driver, Duration.ofSeconds(60), Duration.ofMillis(200));
        wait.until(d -> d.getTitle().startsWith("Databases"));
        WebElement row = wait.until(d -> d.findElement(By.cssSelector("tr[data-id='" + id + "']")));
        assertThat(row.getText()).contains("note=" + HOSTILE);
        assertThat(row.findElements(By.tagName("img"))).isEmpty();
        assertInert("the databases list");

        // an error detail that echoes the input (an invalid label) is text too
        String hostileLabel = "<img src=x onerror=window.xss=4>";
        driver.findElement(By.name("label")).sendKeys(hostileLabel);
        driver.findElement(By.cssSelector("#new-h + form button[type=submit]")).click();
        wait.until(d -> d.findElements(By.cssSelector("#create-feedback .problem")).size() == 1);
        assertThat(driver.findElement(By.cssSelector("#create-feedback .problem")).getText())
                .contains(hostileLabel);
        assertThat(driver.findElements(By.cssSelector("#create-feedback img, #create-feedback script"))).isEmpty();
        assertInert("a create error");

        driver.get(palisade.apiUrl() + "/console/databases/" + id);
        assertThat(driver.findElement(By.id("summary")).getText()).contains(HOSTILE);
        assertInert("the database page");

        driver.get(palisade.apiUrl() + "/console/databases/" + id + "/sql");
        wait.until(d -> d.findElement(By.id("sql")).isDisplayed());
        WebElement sql = driver.findElement(By.id("sql"));
        sql.clear();
        sql.sendKeys("select " + literal(HOSTILE) + " as \"<b id=injected>col</b>\", "
                + literal("</td></tr></table><img src=x onerror=window.xss=3>") + " as plain");
        driver.findElement(By.cssSelector("#sql-form button[type=submit]")).click();
        WebElement table = wait.until(d -> d.findElement(By.cssSelector("#result table.sql-result")));
        assertThat(table.findElements(By.tagName("th")).getFirst().getText()).isEqualTo("<b id=injected>col</b>");
        assertThat(table.findElements(By.cssSelector("tbody td")).getFirst().getText()).isEqualTo(HOSTILE);
        assertThat(driver.findElements(By.cssSelector("#result img, #result script, #injected"))).isEmpty();
        assertInert("a query result");
        seen.add(driver.getPageSource());
        seen.add(driver.getCurrentUrl());
    }

    @Test
    @Order(6)
    void theKeyIsInNoPageResponseUrlOrLog() {
        ConsoleHttp console = console();
        for (String path : List.of("/console/databases", "/console/databases/rows", "/console/databases/" + id,
                "/console/databases/" + id + "/summary", "/console/databases/" + id + "/logs",
                "/console/databases/" + id + "/metrics", "/console/databases/" + id + "/sql", "/console/host")) {
            record(console.get(path));
            record(console.page(path));
        }
        record(console.post("/console/databases/" + id + "/reveal", Map.of()));
        record(console.post("/console/databases/" + id + "/sql", Map.of("sql", "select current_user")));
        for (String path : List.of("/console/databases", "/console/databases/" + id, "/console/host")) {
            driver.get(palisade.apiUrl() + path);
            seen.add(driver.getCurrentUrl());
            seen.add(driver.getPageSource());
        }
        assertThat(seen).isNotEmpty().allSatisfy(text -> assertThat(text).doesNotContain(key));
        List<String> lines = logs.list.stream().map(e -> e.getFormattedMessage() + " " + e.getThrowableProxy())
                .toList();
        assertThat(lines).as("log lines").isNotEmpty().noneMatch(line -> line.contains(key));
        assertThat(lines).anyMatch(line -> line.contains("console: a browser signed in"));
    }

    private void assertInert(String where) {
        try {
            driver.switchTo().alert();
            throw new AssertionError("an alert opened on " + where);
        } catch (NoAlertPresentException expected) {
            // nothing ran
        }
        assertThat(driver.executeScript("return window.xss === undefined ? null : String(window.xss);"))
                .as("script ran on %s", where).isNull();
    }

    private static String literal(String text) {
        return "'" + text.replace("'", "''") + "'";
    }

    private static String json(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }
}
