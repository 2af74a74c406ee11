package io.palisade.api;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.logical.CopyProgress;
import io.palisade.logical.CopyProgress.TableState;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class TestCopyWatch {
    private static final long SECOND = 1_000_000_000L;

    @Test
    void aCopyThatKeepsAdvancingIsNeverStalledWhateverItsErrors() {
        CopyWatch watch = new CopyWatch(Duration.ofSeconds(30), 0);
        for (int s = 0; s <= 300; s += 5) {
            assertThat(watch.stalled(progress(TableState.DATA_COPY, s * 1000L, 10_000, s), s * SECOND))
                    .as("at %d s", s).isFalse();
        }
    }

    @Test
    void aCopyWithoutErrorsIsNeverStalledHoweverSlow() {
        CopyWatch watch = new CopyWatch(Duration.ofSeconds(30), 0);
        for (int s = 0; s <= 300; s += 5) {
            assertThat(watch.stalled(progress(TableState.DATA_COPY, 1000, 0, 0), s * SECOND)).isFalse();
        }
    }

    @Test
    void newErrorsWithoutProgressForTheStallPeriodStallTheCopy() {
        CopyWatch watch = new CopyWatch(Duration.ofSeconds(30), 0);
        assertThat(watch.stalled(progress(TableState.DATA_COPY, 5000, 0, 0), 0)).isFalse();
        // the initial copy fails and starts over: fewer bytes sent than before, errors counted every 5 s
        long errors = 0;
        for (int s = 5; s <= 30; s += 5) {
            errors++;
            assertThat(watch.stalled(progress(TableState.DATA_COPY, 1000, 0, errors), s * SECOND)).as("at %d s", s)
                    .isFalse();
        }
        CopyProgress last = progress(TableState.DATA_COPY, 1000, 0, errors + 1);
        assertThat(watch.stalled(last, 35 * SECOND)).isTrue();
        assertThat(watch.newErrors(last)).isEqualTo(7);
    }

    @Test
    void aTableBecomingReadyOrTheLagFallingCountsAsProgress() {
        CopyWatch watch = new CopyWatch(Duration.ofSeconds(30), 0);
        assertThat(watch.stalled(progress(TableState.SYNC_DONE, 9000, 900, 0), 0)).isFalse();
        assertThat(watch.stalled(progress(TableState.SYNC_DONE, 9000, 950, 1), 20 * SECOND)).isFalse();
        assertThat(watch.stalled(progress(TableState.READY, 9000, 950, 2), 40 * SECOND)).as("ready").isFalse();
        assertThat(watch.stalled(progress(TableState.READY, 9000, 800, 3), 65 * SECOND)).as("lag fell").isFalse();
        assertThat(watch.stalled(progress(TableState.READY, 9000, 900, 4), 90 * SECOND)).isFalse();
        assertThat(watch.stalled(progress(TableState.READY, 9000, 900, 5), 96 * SECOND)).isTrue();
    }

    @Test
    void aRestartedTargetCountingErrorsAfreshStartsTheClockAgain() {
        CopyWatch watch = new CopyWatch(Duration.ofSeconds(30), 0);
        assertThat(watch.stalled(progress(TableState.DATA_COPY, 100, 0, 4), 0)).isFalse();
        assertThat(watch.stalled(progress(TableState.DATA_COPY, 100, 0, 1), 40 * SECOND)).isFalse();
        assertThat(watch.stalled(progress(TableState.DATA_COPY, 100, 0, 2), 60 * SECOND)).isFalse();
        assertThat(watch.stalled(progress(TableState.DATA_COPY, 100, 0, 3), 71 * SECOND)).isTrue();
    }

    @Test
    void theLastPanicElseErrorElseFatalLineIsTheProblem() {
        List<String> log = List.of(
                "2026-12-01 23:20:50.001 UTC [311] ERROR:  could not extend file \"base/16384/16390\": No space left",
                "2026-12-01 23:20:51.002 UTC [312] PANIC:  could not write to file \"pg_wal/xlogtemp.312\": No space"
                        + " left on device",
                "2026-12-01 23:20:51.100 UTC [300] LOG:  server process (PID 312) was terminated by signal 6: Aborted",
                "2026-12-01 23:20:51.200 UTC [313] FATAL:  the database system is in recovery mode");
        assertThat(CopyWatch.lastProblem(log)).hasValue(
                "PANIC: could not write to file \"pg_wal/xlogtemp.312\": No space left on device");
        assertThat(CopyWatch.lastProblem(log.subList(2, 4))).hasValue("FATAL: the database system is in recovery mode");
        assertThat(CopyWatch.lastProblem(List.of("LOG:  database system is ready to accept connections"))).isEmpty();
    }

    private static CopyProgress progress(TableState state, long copied, long lag, long errors) {
        return new CopyProgress(new TreeMap<>(Map.of("big", state)), copied, 10_000, lag, errors);
    }
}
