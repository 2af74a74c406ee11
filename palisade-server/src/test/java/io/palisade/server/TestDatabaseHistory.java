package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import org.junit.jupiter.api.Test;

/** The rings behind the metrics windows, driven by a hand-set clock. */
class TestDatabaseHistory {
    private static final class ManualClock implements InstantSource {
        private Instant now = Instant.parse("2026-12-01T00:00:00Z");

        @Override
        public Instant instant() {
            return now;
        }

        void advance(Duration duration) {
            now = now.plus(duration);
        }
    }

    @Test
    void theHourKeepsOneSlotPerStepAndNothingOlderThanAnHour() {
        ManualClock clock = new ManualClock();
        DatabaseHistory history = new DatabaseHistory(Duration.ofSeconds(10), 2, clock);
        for (int i = 0; i < 1000; i++) {
            history.record(new double[] {i, i % 2 == 0 ? Double.NaN : i});
            clock.advance(Duration.ofSeconds(10));
        }
        clock.advance(Duration.ofSeconds(-10));
        DatabaseHistory.Points hour = history.window(DatabaseHistory.Window.HOUR);
        assertThat(hour.stepSeconds()).isEqualTo(10);
        assertThat(hour.times()).hasSize(360);
        assertThat(hour.times()[359]).isEqualTo(clock.instant().getEpochSecond());
        assertThat(hour.times()[359] - hour.times()[0]).isEqualTo(3590);
        assertThat(hour.values().get(0)[0]).isEqualTo(640);
        assertThat(hour.values().get(0)[359]).isEqualTo(999);
        assertThat(hour.values().get(1)[359]).isEqualTo(999);
        assertThat(hour.values().get(1)[358]).isNaN();
    }

    @Test
    void theDayKeepsMeansOfFiveMinuteBucketsForADayAtMost() {
        ManualClock clock = new ManualClock();
        DatabaseHistory history = new DatabaseHistory(Duration.ofSeconds(10), 1, clock);
        int steps = 2 * 24 * 360; // two days
        for (int i = 0; i < steps; i++) {
            history.record(new double[] {i / 30}); // one value per 5 minute bucket
            clock.advance(Duration.ofSeconds(10));
        }
        clock.advance(Duration.ofSeconds(-10));
        DatabaseHistory.Points day = history.window(DatabaseHistory.Window.DAY);
        assertThat(day.stepSeconds()).isEqualTo(300);
        assertThat(day.times()).hasSize(288);
        assertThat(day.times()[287] - day.times()[0]).isEqualTo(287 * 300);
        assertThat(day.values().getFirst()[287]).isEqualTo((steps - 1) / 30);
        assertThat(day.values().getFirst()[0]).isEqualTo((steps - 1) / 30 - 287);
        // the hour window still has one hour only
        assertThat(history.window(DatabaseHistory.Window.HOUR).times()).hasSize(360);
    }

    @Test
    void aBucketIsTheMeanOfItsKnownSamplesAndGapsAreUnknown() {
        ManualClock clock = new ManualClock();
        DatabaseHistory history = new DatabaseHistory(Duration.ofSeconds(10), 1, clock);
        history.record(new double[] {10});
        clock.advance(Duration.ofSeconds(10));
        history.record(new double[] {Double.NaN});
        clock.advance(Duration.ofSeconds(10));
        history.record(new double[] {20});
        assertThat(history.window(DatabaseHistory.Window.DAY).values().getFirst()).containsExactly(15);

        clock.advance(Duration.ofSeconds(60)); // six steps without a sample, e.g. while suspended
        history.record(new double[] {30});
        DatabaseHistory.Points hour = history.window(DatabaseHistory.Window.HOUR);
        assertThat(hour.times()).hasSize(9);
        assertThat(hour.values().getFirst()[3]).isNaN();
        assertThat(hour.values().getFirst()[8]).isEqualTo(30);

        clock.advance(Duration.ofHours(2)); // nothing within the hour any more
        assertThat(history.window(DatabaseHistory.Window.HOUR).times()).isEmpty();
        assertThat(history.window(DatabaseHistory.Window.DAY).times()).isNotEmpty();
        clock.advance(Duration.ofDays(1));
        assertThat(history.window(DatabaseHistory.Window.DAY).times()).isEmpty();
    }

    @Test
    void aStepMustBeWholeSecondsDividingAnHour() {
        assertThatThrownBy(() -> new DatabaseHistory(Duration.ofMillis(1500), 1, new ManualClock()))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new DatabaseHistory(Duration.ofSeconds(7), 1, new ManualClock()))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
