package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.javalin.Javalin;
import io.javalin.http.Context;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.store.MoveRecord;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Move routes: {@code POST /v1/databases/{id}/isolation} starts a move (202 with the move), {@code GET …/move} reports
 * the latest one, {@code DELETE …/move} cancels the running one. Stateless; everything lives in {@link MoveService}.
 */
final class MoveRoutes {
    private final Supplier<DatabaseService> databases;

    MoveRoutes(Supplier<DatabaseService> databases) {
        this.databases = requireNonNull(databases, "databases is null");
    }

    void register(Javalin app) {
        app.post("/v1/databases/{id}/isolation", ctx -> {
            byte[] body = ctx.bodyAsBytes();
            MoveService.MoveRequest request = body.length == 0 ? null : Json.read(body, MoveService.MoveRequest.class);
            MoveRecord move = moves().start(ApiServer.account(ctx), ctx.pathParam("id"), request);
            ctx.status(202).json(describe(move));
        });
        app.get("/v1/databases/{id}/move", ctx -> {
            String id = ctx.pathParam("id");
            MoveRecord move = moves().latest(ApiServer.account(ctx), id).orElseThrow(() -> PalisadeException.notFound(
                    "database " + id + " has never moved"));
            ctx.json(describe(move));
        });
        app.delete("/v1/databases/{id}/move", ctx -> ctx.json(describe(moves().cancel(ApiServer.account(ctx),
                ctx.pathParam("id")))));
    }

    private MoveService moves() {
        return databases.get().moves().orElseThrow(() -> new PalisadeException(ErrorCode.CONFLICT,
                "moves between rungs are not enabled on this server"));
    }

    /** The latest move of a database if it has not finished, for {@code GET /v1/databases/{id}}. */
    static Optional<Map<String, Object>> unfinished(DatabaseService databases, String id) {
        return databases.moves().flatMap(moves -> databases.store().moves().latest(id))
                .filter(move -> !move.phase().finished())
                .map(MoveRoutes::describe);
    }

    static Map<String, Object> describe(MoveRecord move) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", move.id());
        out.put("database_id", move.databaseId());
        out.put("from", move.from().wireName());
        out.put("to", move.to().wireName());
        out.put("plan", move.toPlan().name());
        out.put("phase", move.phase().wireName());
        out.put("finished", move.phase().finished());
        move.detail().ifPresent(detail -> out.put("detail", detail));
        out.put("copied_bytes", move.copiedBytes());
        out.put("total_bytes", move.totalBytes());
        out.put("lag_bytes", move.lagBytes());
        out.put("cutover_ms", move.cutoverMillis().orElse(null));
        out.put("started_at", move.startedAt());
        out.put("updated_at", move.updatedAt());
        out.put("finished_at", move.finishedAt().orElse(null));
        return out;
    }
}
