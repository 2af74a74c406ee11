package io.palisade.server.console;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.server.TestingPalisade;
import io.palisade.testing.TestingDirectories;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.openqa.selenium.By;
import org.openqa.selenium.Keys;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The console in a real headless Chromium against a full palisade (process rung): sign in, create a database and
 * watch it become running without a reload, run SQL (a result and an error with its SQLSTATE), see the charts fill,
 * rotate the password (the old one then fails through the proxy with 28P01), delete after typing the id; a wrong key
 * sees nothing and another account's database is not found. Saves its screenshots under target/screenshots; with
 * {@code -Dpalisade.update-screenshots=true} into docs/img, the ones the README shows.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TestConsoleBrowser {
    private static final Path SCREENSHOTS = Boolean.getBoolean("palisade.update-screenshots")
            ? TestingDirectories.repoDir().resolve("docs/img")
            : TestingDirectories.repoDir().resolve("palisade-server/target/screenshots");
    private static final Duration WAIT = Duration.ofSeconds(60);

    private TestingPalisade palisade;
    private TestingBrowser browser;
    private ChromeDriver driver;
    private String id;

    @BeforeAll
    void open() {
        // sample every 2 s (not 10 s) so the charts have points within the test
        System.setProperty("palisade.internal.metrics-sample-step-millis", "2000");
        browser = TestingBrowser.open();
        driver = browser.driver();
        palisade = TestingPalisade.requiring("process", Map.of());
    }

    @AfterAll
    void close() {
        System.clearProperty("palisade.internal.metrics-sample-step-millis");
        if (browser != null) {
            browser.close();
        }
        if (palisade != null) {
            palisade.close();
        }
    }

    private WebDriverWait waiting() {
        WebDriverWait wait = new WebDriverWait(driver, WAIT, Duration.ofMillis(200));
        // htmx replaces elements while the test looks at them
        wait.ignoring(org.openqa.selenium.StaleElementReferenceException.class);
        wait.withMessage(() -> "page " + driver.getCurrentUrl() + " shows: " + driver.findElement(By.tagName("main"))
                .getText());
        return wait;
    }

    private void signIn(String key) {
        driver.get(palisade.apiUrl() + "/console");
        assertThat(driver.getTitle()).isEqualTo("Sign in · palisade console");
        WebElement field = driver.findElement(By.id("key"));
        field.sendKeys(key);
        field.sendKeys(Keys.ENTER);
    }

    @Test
    @Order(1)
    void aWrongKeySeesNothing() {
        palisade.request("POST", "/v1/databases", "{\"label\":\"admin-only\",\"isolation\":\"process\"}",
                palisade.adminKey());
        signIn("pk_" + "0".repeat(40));
        assertThat(driver.findElement(By.cssSelector(".problem")).getText()).contains("not valid");
        assertThat(driver.getPageSource()).doesNotContain("admin-only");
        driver.get(palisade.apiUrl() + "/console/databases");
        assertThat(driver.getCurrentUrl()).endsWith("/console/signin");
        assertThat(driver.getPageSource()).doesNotContain("admin-only");
    }

    @Test
    @Order(2)
    void signInCreateAndSeeItRun() {
        signIn(palisade.adminKey());
        waiting().until(d -> d.getTitle().equals("Databases · palisade console"));
        assertThat(driver.findElement(By.id("databases")).getText()).contains("admin-only");
        driver.findElement(By.name("label")).sendKeys("orders");
        new org.openqa.selenium.support.ui.Select(driver.findElement(By.name("isolation"))).selectByValue("process");
        driver.findElement(By.cssSelector("#new-h + form button[type=submit]")).click();
        waiting().until(d -> d.getCurrentUrl().matches(".*/console/databases/[a-z0-9-]+$"));
        id = driver.getCurrentUrl().substring(driver.getCurrentUrl().lastIndexOf('/') + 1);
        assertThat(driver.getTitle()).isEqualTo("orders · palisade console");
        // the state updates in place (no reload): mark the page, then wait for "running" on the same document
        driver.executeScript("document.body.setAttribute('data-marker', 'same-page')");
        waiting().until(d -> d.findElement(By.id("state")).getText().equals("running"));
        assertThat(driver.findElement(By.tagName("body")).getAttribute("data-marker")).isEqualTo("same-page");
        assertThat(driver.findElement(By.id("connection")).getText()).contains("connection_url", "jdbc_url")
                .contains("••••••••");

        driver.get(palisade.apiUrl() + "/console/databases");
        WebElement row = waiting().until(d -> d.findElement(By.cssSelector("tr[data-id='" + id + "']")));
        assertThat(row.findElement(By.cssSelector("[data-state]")).getText()).isEqualTo("running");
        assertThat(row.getText()).contains("orders", "process");
        browser.viewport(1280, 800);
        browser.screenshot(SCREENSHOTS.resolve("console-databases.png"));
    }

    @Test
    @Order(3)
    void filterAndSort() {
        driver.get(palisade.apiUrl() + "/console/databases");
        WebElement filter = driver.findElement(By.id("q"));
        filter.sendKeys("orders");
        waiting().until(d -> d.findElements(By.cssSelector("#rows tr[data-id]")).size() == 1);
        assertThat(driver.findElement(By.cssSelector("#rows tr[data-id]")).getAttribute("data-id")).isEqualTo(id);
        driver.get(palisade.apiUrl() + "/console/databases?sort=label&dir=asc");
        List<String> labels = driver.findElements(By.cssSelector("#rows td.label")).stream().map(WebElement::getText)
                .toList();
        assertThat(labels).containsExactly("admin-only", "orders");
    }

    @Test
    @Order(4)
    void sqlEditorShowsResultsAndErrors() {
        driver.get(palisade.apiUrl() + "/console/databases/" + id + "/sql");
        WebElement sql = driver.findElement(By.id("sql"));
        sql.clear();
        sql.sendKeys("select 1 as one, null as nothing");
        sql.sendKeys(Keys.chord(Keys.CONTROL, Keys.ENTER));
        WebElement table = waiting().until(d -> d.findElement(By.cssSelector("#result table.sql-result")));
        assertThat(table.findElements(By.tagName("th")).stream().map(WebElement::getText)).containsExactly("one",
                "nothing");
        assertThat(table.findElements(By.cssSelector("tbody td")).stream().map(WebElement::getText))
                .containsExactly("1", "NULL");

        sql.clear();
        sql.sendKeys("select 1 frm nowhere");
        driver.findElement(By.cssSelector("#sql-form button[type=submit]")).click();
        WebElement error = waiting().until(d -> d.findElement(By.cssSelector("#result .sql-error")));
        assertThat(error.findElement(By.cssSelector("[data-sqlstate]")).getText()).isEqualTo("42601");
        assertThat(error.findElement(By.cssSelector("[data-position]")).getText()).isEqualTo("14");
        assertThat(error.getText()).contains("syntax error");
    }

    @Test
    @Order(5)
    void chartsHaveDataPoints() {
        driver.get(palisade.apiUrl() + "/console/databases/" + id);
        waiting().until(d -> {
            d.navigate().refresh();
            WebElement charts = new WebDriverWait(d, Duration.ofSeconds(10))
                    .until(x -> x.findElement(By.cssSelector("#charts[data-points]")));
            // a few samples of every series, so the screenshot shows lines rather than dots
            return Integer.parseInt(charts.getAttribute("data-points")) >= 40;
        });
        List<WebElement> figures = driver.findElements(By.cssSelector("#charts figure.chart"));
        assertThat(figures.stream().map(f -> f.getAttribute("data-series"))).contains("connections", "cpu_percent",
                "memory_bytes", "storage_bytes", "transactions_per_second", "proxy_bytes_per_second",
                "broker_requests_per_second");
        assertThat(driver.findElements(By.cssSelector("#charts canvas"))).isNotEmpty();
        driver.findElement(By.cssSelector("[data-window='1d']")).click();
        waiting().until(d -> d.findElement(By.cssSelector(".chart-status")).getText().startsWith("Last day"));
        driver.findElement(By.cssSelector("[data-window='1h']")).click();
        waiting().until(d -> d.findElement(By.cssSelector(".chart-status")).getText().startsWith("Last hour"));
        browser.viewport(1280, 1100);
        driver.executeScript("window.scrollTo(0, 0)");
        browser.screenshot(SCREENSHOTS.resolve("console-database.png"));
        browser.viewport(390, 844);
        try {
            waiting().until(d -> ((Number) driver.executeScript(
                    "return document.documentElement.scrollWidth - window.innerWidth;")).intValue() <= 0);
        } catch (org.openqa.selenium.TimeoutException e) {
            // the assertion below says what is too wide
        }
        browser.screenshot(SCREENSHOTS.resolve("console-phone.png"));
        Number overflow = (Number) driver.executeScript(
                "return document.documentElement.scrollWidth - window.innerWidth;");
        Object wide = driver.executeScript("return Array.from(document.querySelectorAll('main *')).filter("
                + "e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5)"
                + ".map(e => e.tagName + '.' + e.className + '#' + e.id);");
        assertThat(overflow.intValue()).as("no sideways scrolling at phone width; too wide: %s", wide)
                .isLessThanOrEqualTo(0);
        browser.viewport(1280, 800);
    }

    @Test
    @Order(6)
    void revealAndRotateThePassword() throws Exception {
        JsonNode before = palisade.request("GET", "/v1/databases/" + id + "/connection", null, palisade.adminKey())
                .json();
        String oldPassword = before.path("password").asText();
        driver.get(palisade.apiUrl() + "/console/databases/" + id);
        assertThat(driver.getPageSource()).doesNotContain(oldPassword);
        tabTo("reveal").sendKeys(Keys.ENTER);
        waiting().until(d -> d.findElement(By.id("connection")).getText().contains(oldPassword));
        try (Connection c = proxy(before, oldPassword)) {
            assertThat(c.isValid(5)).isTrue();
        }

        tabTo("action-rotate").sendKeys(Keys.ENTER);
        waiting().until(d -> d.findElement(By.id("action-feedback")).getText().startsWith("Done"));
        waiting().until(d -> !d.findElement(By.id("connection")).getText().contains(oldPassword));
        assertThat(driver.findElement(By.id("connection")).getText()).contains("••••••••");
        assertThatThrownBy(() -> proxy(before, oldPassword).close()).isInstanceOf(SQLException.class)
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("28P01"));
        String newPassword = palisade.request("GET", "/v1/databases/" + id + "/connection", null,
                palisade.adminKey()).json().path("password").asText();
        try (Connection c = proxy(before, newPassword)) {
            assertThat(c.isValid(5)).isTrue();
        }
    }

    @Test
    @Order(7)
    void actionsGiveFeedback() {
        driver.get(palisade.apiUrl() + "/console/databases/" + id);
        // the process rung cannot suspend: the API's problem detail shows where the action was taken
        driver.findElement(By.id("action-suspend")).click();
        waiting().until(d -> d.findElements(By.cssSelector("#action-feedback .problem")).size() == 1);
        assertThat(driver.findElement(By.cssSelector("#action-feedback .problem")).getText())
                .contains("cannot suspend");
        driver.findElement(By.id("action-restart")).click();
        waiting().until(d -> d.findElement(By.id("action-feedback")).getText().startsWith("Done: restart"));
        waiting().until(d -> d.findElement(By.id("state")).getText().equals("running"));
        // a failure shows the API's problem detail
        driver.findElement(By.cssSelector("details > summary")).click();
        driver.findElement(By.cssSelector("#restore-form input[name=target_time]")).sendKeys("yesterday");
        driver.findElement(By.cssSelector("#restore-form button")).click();
        waiting().until(d -> !d.findElement(By.id("restore-feedback")).getText().isEmpty()
                && !d.findElement(By.id("restore-feedback")).getText().equals("Pending…"));
        assertThat(driver.findElement(By.cssSelector("#restore-feedback .problem")).getText()).isNotBlank();
        // the log tail shows the server's own log lines
        waiting().until(d -> d.findElement(By.id("logs")).getText().contains("database system is ready"));
    }

    @Test
    @Order(8)
    void anotherAccountsDatabaseIsNotFound() {
        String otherKey = palisade.newAccount("console-other");
        JsonNode other = palisade.request("POST", "/v1/databases",
                        "{\"label\":\"other-secret-label\",\"isolation\":\"process\"}", otherKey)
                .json();
        String otherId = other.path("id").asText();
        driver.get(palisade.apiUrl() + "/console/databases/" + otherId);
        assertThat(driver.getTitle()).isEqualTo("Not found · palisade console");
        assertThat(driver.getPageSource()).doesNotContain("other-secret-label");
        driver.get(palisade.apiUrl() + "/console/databases/" + otherId + "/sql");
        assertThat(driver.getTitle()).isEqualTo("Not found · palisade console");
        driver.get(palisade.apiUrl() + "/console/databases");
        assertThat(driver.getPageSource()).doesNotContain(otherId, "other-secret-label");
        palisade.request("DELETE", "/v1/databases/" + otherId, null, otherKey);
    }

    @Test
    @Order(9)
    void hostPage() {
        driver.get(palisade.apiUrl() + "/console/host");
        assertThat(driver.getTitle()).isEqualTo("Host · palisade console");
        assertThat(driver.findElement(By.id("rungs")).getText()).contains("process", "vm", "database", "schema");
        assertThat(driver.findElement(By.id("capacity")).getText()).contains("Memory", "Disk");
        assertThat(driver.findElement(By.cssSelector("[data-count=running]")).getText()).isNotEqualTo("0");
    }

    @Test
    @Order(10)
    void deleteNeedsTheTypedId() {
        driver.get(palisade.apiUrl() + "/console/databases/" + id);
        WebElement confirm = driver.findElement(By.id("confirm"));
        confirm.sendKeys("orders");
        confirm.sendKeys(Keys.ENTER);
        waiting().until(d -> d.findElement(By.cssSelector("#delete-feedback .problem")).getText()
                .contains("type the database id"));
        assertThat(palisade.request("GET", "/v1/databases/" + id, null, palisade.adminKey()).status())
                .isEqualTo(200);
        confirm.clear();
        confirm.sendKeys(id);
        driver.findElement(By.cssSelector("#delete-form button")).click();
        waiting().until(d -> d.getCurrentUrl().endsWith("/console/databases"));
        assertThat(palisade.request("GET", "/v1/databases/" + id, null, palisade.adminKey()).status())
                .isEqualTo(404);
        waiting().until(d -> d.findElements(By.cssSelector("tr[data-id='" + id + "']")).isEmpty());
    }

    /** Moves the focus with the Tab key only, from the top of the page, to the element with this id. */
    private WebElement tabTo(String elementId) {
        driver.executeScript("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);");
        org.openqa.selenium.interactions.Actions keys = new org.openqa.selenium.interactions.Actions(driver);
        for (int i = 0; i < 300; i++) {
            keys.sendKeys(Keys.TAB).perform();
            WebElement active = driver.switchTo().activeElement();
            if (elementId.equals(active.getAttribute("id"))) {
                return active;
            }
        }
        throw new AssertionError("the Tab key never reaches #" + elementId);
    }

    private Connection proxy(JsonNode connection, String password) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", connection.path("username").asText());
        properties.setProperty("password", password);
        properties.setProperty("sslmode", "require");
        properties.setProperty("options", "endpoint=" + id);
        properties.setProperty("connectTimeout", "10");
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:"
                + palisade.server().proxyPort().getAsInt() + "/" + connection.path("database").asText(), properties);
    }
}
