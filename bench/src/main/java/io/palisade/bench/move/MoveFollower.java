package io.palisade.bench.move;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.bench.backup.PalisadeApi;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Starts a move through the API ({@code POST /v1/databases/{id}/isolation}) and follows it
 * ({@code GET /v1/databases/{id}/move} every 100 ms) to its end, noting when each phase was first seen. Stateless.
 */
public final class MoveFollower {
    private static final Duration POLL = Duration.ofMillis(100);

    private MoveFollower() {}

    /**
     * One finished move.
     *
     * @param startedAt wall-clock time of the POST, epoch milliseconds
     * @param totalMillis POST → the move seen finished
     * @param phases each phase's first sighting, epoch milliseconds, in order
     * @param last the move as GET returned it at the end
     */
    public record Timing(long startedAt, long totalMillis, Map<String, Long> phases, JsonNode last) {
        public Timing {
            requireNonNull(phases, "phases is null");
            requireNonNull(last, "last is null");
            phases = Map.copyOf(phases);
        }

        public String phase() {
            return last.path("phase").asText();
        }

        public long cutoverMillis() {
            return last.path("cutover_ms").asLong(-1);
        }

        public long totalBytes() {
            return last.path("total_bytes").asLong();
        }

        /** When {@code phase} was first seen, or -1. */
        public long seen(String phase) {
            return phases.getOrDefault(phase, -1L);
        }
    }

    /** Moves {@code id} to {@code isolation} and waits for the end, at most {@code timeout}; fails unless done. */
    public static Timing move(PalisadeApi api, String id, String isolation, Duration timeout)
            throws InterruptedException {
        long startedAt = System.currentTimeMillis();
        long start = System.nanoTime();
        api.ok("POST", "/v1/databases/" + id + "/isolation", "{\"isolation\":\"" + isolation + "\"}");
        Map<String, Long> phases = new LinkedHashMap<>();
        while (true) {
            JsonNode move = api.get("/v1/databases/" + id + "/move");
            long now = System.currentTimeMillis();
            phases.putIfAbsent(move.path("phase").asText(), now);
            if (move.path("finished").asBoolean()) {
                Timing timing = new Timing(startedAt, (System.nanoTime() - start) / 1_000_000, phases, move);
                if (!timing.phase().equals("done")) {
                    throw new IllegalStateException("the move of " + id + " to " + isolation + " ended "
                            + timing.phase() + ": " + move.path("detail").asText());
                }
                return timing;
            }
            if (System.nanoTime() - start > timeout.toNanos()) {
                throw new IllegalStateException("the move of " + id + " to " + isolation + " did not end within "
                        + timeout + "; last seen: " + move);
            }
            Thread.sleep(POLL.toMillis());
        }
    }
}
