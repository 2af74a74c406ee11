package io.palisade.server;

import java.io.IOException;
import java.nio.file.Path;

/**
 * {@link TestingPalisadeProcess} for tests outside this package (the hostile-tenant suite): {@code palisade serve} as
 * its own OS process with {@code PALISADE_BOOTSTRAP_API_KEY} in its environment. Close stops it (SIGTERM, then
 * SIGKILL); the data directory is the caller's. Thread-safe as the process it wraps.
 */
public final class TestingServeProcess implements AutoCloseable {
    private final TestingPalisadeProcess process;

    public TestingServeProcess(Path dataDir, String apiKey) throws IOException {
        this.process = new TestingPalisadeProcess(dataDir, apiKey);
    }

    /** The REST API's base URL, e.g. {@code http://127.0.0.1:PORT}. */
    public String url() {
        return process.url();
    }

    public String logTail() {
        return process.logTail();
    }

    @Override
    public void close() {
        process.close();
    }
}
