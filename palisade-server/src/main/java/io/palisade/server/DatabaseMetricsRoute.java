package io.palisade.server;

import static java.util.Objects.requireNonNull;

import io.javalin.Javalin;
import io.javalin.http.Context;
import io.palisade.api.DatabaseService;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.store.DatabaseRecord;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * {@code GET /v1/databases/{id}/metrics?window=1h|1d} (default {@code 1h}): the sampler's history of one database, for
 * charts that need no Prometheus. The shape is fixed (the web console draws from it):
 *
 * <pre>{@code {"id": "...", "window": "1h", "step_seconds": 10,
 *  "series": {"connections": [[<epoch seconds>, <number or null>], ...], ...}}}</pre>
 *
 * Every series of {@link DatabaseMetricsSampler#SERIES} is present, all with the same timestamps (ascending, one per
 * step from the oldest sample in the window to now; null where nothing was learned). Owner-only: the API key was
 * checked by the API's {@code /v1/databases*} filter, and another account's id is not found exactly like an unknown
 * one. Thread-safe (stateless; the sampler and service are thread-safe).
 */
final class DatabaseMetricsRoute {
    private final Supplier<DatabaseService> service;
    private final Supplier<DatabaseMetricsSampler> sampler;

    /** Both suppliers answer null until the server is ready (the route then answers 503 like the others). */
    DatabaseMetricsRoute(Supplier<DatabaseService> service, Supplier<DatabaseMetricsSampler> sampler) {
        this.service = requireNonNull(service, "service is null");
        this.sampler = requireNonNull(sampler, "sampler is null");
    }

    void register(Javalin app) {
        app.get("/v1/databases/{id}/metrics", this::metrics);
    }

    private void metrics(Context ctx) {
        DatabaseService databases = service.get();
        DatabaseMetricsSampler metrics = sampler.get();
        if (databases == null || metrics == null) {
            throw new PalisadeException(ErrorCode.NOT_READY, "palisade is starting (reconciling instances); retry in a "
                    + "moment");
        }
        String account = ctx.attribute("account");
        if (account == null) {
            throw new PalisadeException(ErrorCode.UNAUTHENTICATED, "missing API key");
        }
        DatabaseRecord db = databases.get(account, ctx.pathParam("id"));
        String name = ctx.queryParam("window");
        DatabaseHistory.Window window = name == null ? DatabaseHistory.Window.HOUR
                : DatabaseHistory.Window.fromWire(name).orElseThrow(() -> PalisadeException.invalid("window must be one"
                        + " of " + Arrays.stream(DatabaseHistory.Window.values()).map(DatabaseHistory.Window::wireName)
                                .collect(Collectors.joining(", ")) + ", got '" + name + "'"));
        ctx.json(body(db.id(), window, metrics));
    }

    static Map<String, Object> body(String id, DatabaseHistory.Window window, DatabaseMetricsSampler sampler) {
        long stepSeconds = window == DatabaseHistory.Window.HOUR ? sampler.step().toSeconds()
                : sampler.step().toSeconds() * DatabaseHistory.STEPS_PER_BUCKET;
        Map<String, Object> series = new LinkedHashMap<>();
        var points = sampler.history(id).map(history -> history.window(window));
        for (int i = 0; i < DatabaseMetricsSampler.SERIES.size(); i++) {
            List<Object[]> list = new ArrayList<>();
            if (points.isPresent()) {
                long[] times = points.get().times();
                double[] values = points.get().values().get(i);
                for (int n = 0; n < times.length; n++) {
                    list.add(new Object[] {times[n], number(values[n])});
                }
            }
            series.put(DatabaseMetricsSampler.SERIES.get(i), list);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", id);
        out.put("window", window.wireName());
        out.put("step_seconds", points.map(DatabaseHistory.Points::stepSeconds).orElse(stepSeconds));
        out.put("series", series);
        return out;
    }

    /** Null for unknown; a whole number without a fraction; otherwise rounded to 3 decimals. */
    private static Object number(double value) {
        if (Double.isNaN(value) || Double.isInfinite(value)) {
            return null;
        }
        if (value == Math.rint(value) && Math.abs(value) < 1e15) {
            return (long) value;
        }
        return Math.round(value * 1000) / 1000.0;
    }
}
