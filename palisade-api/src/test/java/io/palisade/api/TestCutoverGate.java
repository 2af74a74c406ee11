package io.palisade.api;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.logical.CopyProgress;
import io.palisade.logical.CopyProgress.TableState;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class TestCutoverGate {
    private static final long SECOND = 1_000_000_000L;
    private static final long MIB = 1L << 20;

    @Test
    void notBeforeEveryTableIsCopied() {
        CutoverGate gate = new CutoverGate();
        assertThat(gate.ready(progress(TableState.DATA_COPY, 0, 1000), 0)).isFalse();
        assertThat(gate.ready(progress(TableState.READY, 0, 1000), SECOND)).isTrue();
    }

    @Test
    void aSmallLagIsEnoughWhateverTheRate() {
        assertThat(new CutoverGate().ready(progress(TableState.READY, 100 << 10, 1000), 0)).isTrue();
    }

    @Test
    void aLargerLagWaitsUntilTheTargetCanApplyItWithinTheBudget() {
        CutoverGate gate = new CutoverGate();
        // the target applies 8 MiB/s and is 2 MiB behind: 250 ms of work, within the first 500 ms budget
        long confirmed = 100 * MIB;
        for (int s = 0; s <= 3; s++) {
            boolean ready = gate.ready(progress(TableState.READY, 2 * MIB, confirmed + s * 8 * MIB), s * SECOND);
            assertThat(ready).as("at %d s", s).isEqualTo(s >= 2);
        }
    }

    @Test
    void aTargetThatFallsBehindNeverGetsACutoverButTheBudgetGrowsForOneThatHoldsItsLag() {
        CutoverGate slow = new CutoverGate();
        long lag = 4 * MIB;
        for (int s = 0; s <= 120; s++) {
            // applies 64 KiB/s while the tenant writes far more: the lag grows
            lag += MIB;
            assertThat(slow.ready(progress(TableState.READY, lag, s * 64L * 1024), s * SECOND)).isFalse();
        }
        CutoverGate steady = new CutoverGate();
        // applies 1 MiB/s and stays 3 MiB behind: 3 s of work, allowed once the budget has doubled three times
        boolean ready = false;
        int at = 0;
        while (!ready && at <= 60) {
            ready = steady.ready(progress(TableState.READY, 3 * MIB, at * MIB), at * SECOND);
            at++;
        }
        assertThat(ready).isTrue();
        assertThat(at - 1).isBetween(30, 40);
        assertThat(steady.catchUpBound((at - 1) * SECOND)).isEqualTo(Duration.ofSeconds(26));
    }

    private static CopyProgress progress(TableState state, long lag, long confirmed) {
        return new CopyProgress(new TreeMap<>(Map.of("t", state)), 1000, 1000, lag, 0, confirmed);
    }
}
