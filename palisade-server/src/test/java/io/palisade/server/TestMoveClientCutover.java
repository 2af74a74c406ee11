package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.spi.Endpoint;
import io.palisade.spi.Rung;
import io.palisade.store.DatabaseRecord;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The client's view of a move's cutover, on the rungs that live on the host: an open psql session (statements fed over
 * its stdin, as a script does: it exits on the lost connection and is started again), psql at a terminal (it resets
 * its connection by itself), a Neon {@code Pool} session over the broker's WebSocket and a PgJDBC connection through
 * the proxy each run a query every 100 ms across the move. Each gets answers or a clean retryable error (an
 * ErrorResponse with 57P01, 40001 or a connection exception; never a hang or a bare reset), and its retry is answered
 * by the new server within a bound after the switch. The numbers are printed.
 */
class TestMoveClientCutover extends AbstractTestMoves {
    private static final Duration MOVE_TIMEOUT = Duration.ofMinutes(3);
    private static final Duration TICK = Duration.ofMillis(100);
    /** Switch (or a client's first error) → its first answer from the new server; holds on a busy 2-core host. */
    private static final Duration BOUND = Duration.ofSeconds(10);


    @Test
    void clientsAcrossDatabaseToProcess() throws Exception {
        acrossMove(Rung.DATABASE, Rung.PROCESS);
    }

    @Test
    void clientsAcrossProcessToSchema() throws Exception {
        acrossMove(Rung.PROCESS, Rung.SCHEMA);
    }

    private void acrossMove(Rung from, Rung to) throws Exception {
        JsonNode db = create("cutover-" + from.wireName(), from);
        String id = id(db);
        int sourcePort = port(id);
        List<ClientTimeline> timelines = List.of(new ClientTimeline("psql"), new ClientTimeline("psql-tty"),
                new ClientTimeline("neon-pool"), new ClientTimeline("pgjdbc"));
        JsonNode move;
        int targetPort;
        long switchedAt;
        int psqlStarts;
        int terminalResets;
        try (TestingPsqlSession psql = new TestingPsqlSession(url(db), timelines.get(0), TICK);
                TestingPsqlTerminal terminal = new TestingPsqlTerminal(url(db), timelines.get(1), TICK);
                TestingNeonPoolSession neon = new TestingNeonPoolSession(palisade.server().apiPort(),
                        db.get("serverless_url").asText(), timelines.get(2), TICK);
                JdbcSession jdbc = new JdbcSession(url(db), timelines.get(3), TICK)) {
            awaitAnswers(timelines, sourcePort, Duration.ofSeconds(60));
            try (SwitchWatch watch = new SwitchWatch(id, sourcePort)) {
                move = move(id, to, MOVE_TIMEOUT);
                assertThat(move.path("phase").asText()).as(move.toString()).isEqualTo("done");
                targetPort = port(id);
                switchedAt = watch.switchedAt();
            }
            awaitAnswers(timelines, targetPort, BOUND.plusSeconds(20));
            assertThat(neon.isAlive()).as("the Neon script crashed:%n%s", neon.stderr()).isTrue();
            psqlStarts = psql.starts();
            terminalResets = terminal.resets();
        }
        System.out.printf("%s → %s: cutover %d ms (move), psql started %d time(s), the terminal's psql reset its"
                + " connection %d time(s)%n", from.wireName(), to.wireName(), move.path("cutover_ms").asLong(),
                psqlStarts, terminalResets);
        for (ClientTimeline timeline : timelines) {
            ClientTimeline.Cutover cutover = timeline.cutover(switchedAt, sourcePort, targetPort);
            System.out.printf("%s → %s: %s%n", from.wireName(), to.wireName(), cutover.describe());
            cutover.errors().forEach(e -> System.out.printf("    %+d ms %s%n", e.atMillis() - switchedAt,
                    e.error().replace("\n", " | ")));
        }
        assertThat(switchedAt).as("the switch was seen").isPositive();
        assertThat(psqlStarts).as("psql on a pipe was ended and started again").isGreaterThanOrEqualTo(2);
        assertThat(terminalResets).as("psql at a terminal reset its connection by itself").isGreaterThanOrEqualTo(1);
        for (ClientTimeline timeline : timelines) {
            ClientTimeline.Cutover cutover = timeline.cutover(switchedAt, sourcePort, targetPort);
            assertThat(cutover.uncleanErrors()).as("%s: errors without a retryable ErrorResponse", cutover.client())
                    .isEmpty();
            assertThat(cutover.strays()).as("%s: answers from the old server after the switch, or from another",
                    cutover.client()).isEmpty();
            assertThat(cutover.lastOnSource()).as("%s answered on the old server", cutover.client()).isPositive();
            assertThat(cutover.firstOnTarget()).as("%s answered on the new server", cutover.client()).isPositive();
            assertThat(cutover.afterSwitchMillis()).as("%s: switch → first answer on the new server",
                    cutover.client()).isLessThan(BOUND.toMillis());
            if (cutover.firstError() > 0) {
                assertThat(cutover.afterFirstErrorMillis()).as("%s: first error → first answer on the new server",
                        cutover.client()).isLessThan(BOUND.toMillis());
            }
        }
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
    }

    /** Waits (bounded) until every client has answers from the server on {@code port}; the assertions say why not. */
    private static void awaitAnswers(List<ClientTimeline> timelines, int port, Duration timeout)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline && timelines.stream().anyMatch(t -> t.answersFrom(port) < 5)) {
            Thread.sleep(50);
        }
        for (ClientTimeline timeline : timelines) {
            assertThat(timeline.answersFrom(port)).as("%s: answers from the server on port %d within %s; saw %s",
                    timeline.client(), port, timeout, timeline.events()).isGreaterThanOrEqualTo(5);
        }
    }

    private int port(String id) {
        return endpoint(id).port();
    }

    private Endpoint endpoint(String id) {
        DatabaseRecord record = palisade.server().store().find(id).orElseThrow();
        return record.endpoint().orElseThrow(() -> new AssertionError(id + " has no endpoint: " + record));
    }

    /** Watches the database record every 10 ms for the moment its endpoint leaves {@code sourcePort}: the switch. */
    private final class SwitchWatch implements AutoCloseable {
        private final AtomicLong switchedAt = new AtomicLong();
        private final Thread thread;
        private volatile boolean stop;

        SwitchWatch(String id, int sourcePort) {
            thread = Thread.ofPlatform().name("switch-watch").start(() -> {
                while (!stop && switchedAt.get() == 0) {
                    if (palisade.server().store().find(id).flatMap(DatabaseRecord::endpoint)
                            .map(e -> e.port() != sourcePort).orElse(false)) {
                        switchedAt.set(System.currentTimeMillis());
                    }
                    try {
                        Thread.sleep(10);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
        }

        long switchedAt() {
            return switchedAt.get();
        }

        @Override
        public void close() throws InterruptedException {
            stop = true;
            thread.join(Duration.ofSeconds(5));
        }
    }
}
