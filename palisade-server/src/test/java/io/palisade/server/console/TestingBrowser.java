package io.palisade.server.console;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

/**
 * A headless Chromium driven by Selenium through Debian's {@code chromium} and {@code chromium-driver} (nothing is
 * downloaded). Without them the test is skipped with the reason printed, except in CI, where it fails. Closing quits
 * the browser and its driver. Not thread-safe (one test thread).
 */
final class TestingBrowser implements AutoCloseable {
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");

    private final ChromeDriver driver;

    private TestingBrowser(ChromeDriver driver) {
        this.driver = driver;
    }

    static TestingBrowser open() {
        if (!Files.isExecutable(CHROMIUM) || !Files.isExecutable(CHROMEDRIVER)) {
            String reason = "no headless browser: install Debian's chromium and chromium-driver (bin/setup does, for "
                    + "bin/test)";
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError("the console's browser tests must run in CI: " + reason);
            }
            System.out.println("SKIPPED (" + reason + ")");
            org.junit.jupiter.api.Assumptions.abort(reason);
        }
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments(List.of("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,800", "--no-first-run", "--disable-extensions", "--lang=en-US"));
        ChromeDriverService service = new ChromeDriverService.Builder()
                .usingDriverExecutable(CHROMEDRIVER.toFile()).usingAnyFreePort().build();
        ChromeDriver driver = new ChromeDriver(service, options);
        driver.manage().timeouts().pageLoadTimeout(Duration.ofSeconds(30));
        driver.manage().timeouts().scriptTimeout(Duration.ofSeconds(30));
        return new TestingBrowser(driver);
    }

    ChromeDriver driver() {
        return driver;
    }

    /** Sets the viewport's size (CSS pixels), e.g. 1280×800 or a phone's 390×844. */
    void viewport(int width, int height) {
        driver.manage().window().setSize(new Dimension(width, height));
        // headless windows include no browser chrome, but make the inner size exact
        Object inner = driver.executeScript("return [window.innerWidth, window.innerHeight];");
        if (inner instanceof List<?> size && size.size() == 2) {
            int dw = width - ((Number) size.get(0)).intValue();
            int dh = height - ((Number) size.get(1)).intValue();
            if (dw != 0 || dh != 0) {
                driver.manage().window().setSize(new Dimension(width + dw, height + dh));
            }
        }
    }

    /** Saves a screenshot of the viewport as PNG. */
    void screenshot(Path file) {
        try {
            Files.createDirectories(file.getParent());
            Files.write(file, driver.getScreenshotAs(OutputType.BYTES));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot save the screenshot " + file, e);
        }
    }

    @Override
    public void close() {
        driver.quit();
    }
}
