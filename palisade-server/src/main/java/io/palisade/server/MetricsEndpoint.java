package io.palisade.server;

import static java.util.Objects.requireNonNull;

import io.javalin.Javalin;
import io.javalin.http.Context;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.store.MetadataStore;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * {@code GET /metrics} in the Prometheus text format, never without a key: per-database series (labelled
 * {@code database="<id>"}) name every account's databases and their traffic.
 *
 * <ul>
 *   <li>no or an unknown bearer token: 401 problem+json;
 *   <li>the admin account's API key or the configured {@code metrics.token}: every series;
 *   <li>any other account's API key: the aggregate series only, with no database id anywhere in the body.
 * </ul>
 *
 * Thread-safe (immutable; the registry is thread-safe).
 */
final class MetricsEndpoint {
    private static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private final PrometheusMeterRegistry registry;
    private final MetadataStore store;
    private final Optional<String> token;

    MetricsEndpoint(PrometheusMeterRegistry registry, MetadataStore store, Optional<String> token) {
        this.registry = requireNonNull(registry, "registry is null");
        this.store = requireNonNull(store, "store is null");
        this.token = requireNonNull(token, "token is null");
    }

    void register(Javalin app) {
        app.get("/metrics", this::scrape);
    }

    private void scrape(Context ctx) {
        String header = ctx.header("Authorization");
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7) || header.length() <= 7) {
            ctx.header("WWW-Authenticate", "Bearer realm=\"palisade\"");
            throw new PalisadeException(ErrorCode.UNAUTHENTICATED, "GET /metrics needs a key: send 'Authorization: "
                    + "Bearer <metrics.token or API key>' (the admin key or metrics.token sees per-database series)");
        }
        String presented = header.substring(7).strip();
        boolean full;
        if (token.isPresent() && MessageDigest.isEqual(token.get().getBytes(StandardCharsets.UTF_8),
                presented.getBytes(StandardCharsets.UTF_8))) {
            full = true;
        } else {
            String account = store.accountForKey(presented).orElseThrow(() -> {
                ctx.header("WWW-Authenticate", "Bearer realm=\"palisade\", error=\"invalid_token\"");
                return new PalisadeException(ErrorCode.UNAUTHENTICATED,
                        "the key is neither an API key nor metrics.token");
            });
            full = account.equals(PalisadeServer.ADMIN_ACCOUNT);
        }
        String body = scrapeOnce();
        ctx.contentType(CONTENT_TYPE).result(full ? body : aggregateOnly(body));
    }

    /**
     * The registry's text; retried a few times when it meets a per-database series being replaced (a multi-gauge
     * refresh can briefly hold the old and the new row, which the exposition refuses as duplicate labels).
     */
    private String scrapeOnce() {
        RuntimeException last = null;
        for (int attempt = 0; attempt < 5; attempt++) {
            try {
                return registry.scrape();
            } catch (RuntimeException e) {
                last = e;
                try {
                    Thread.sleep(20);
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        throw new PalisadeException(ErrorCode.INTERNAL, "cannot render the metrics: " + last.getMessage(), last);
    }

    /** The scrape without any sample that carries a {@code database} label. */
    static String aggregateOnly(String scrape) {
        return scrape.lines()
                .filter(line -> line.startsWith("#") || !line.contains("database=\""))
                .collect(Collectors.joining("\n", "", "\n"));
    }
}
