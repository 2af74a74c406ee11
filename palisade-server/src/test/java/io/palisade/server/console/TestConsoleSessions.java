package io.palisade.server.console;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;

class TestConsoleSessions {
    /** A clock the test moves. */
    private static final class MovingClock extends Clock {
        private Instant now = Instant.parse("2026-12-02T05:00:00Z");

        @Override
        public java.time.ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }

    @Test
    void aSessionEndsAfterIdleTimeAndOnClose() {
        MovingClock clock = new MovingClock();
        ConsoleSessions sessions = new ConsoleSessions(clock, Duration.ofMinutes(30));
        String id = sessions.open("pk_secret_key");
        ConsoleSessions.Session session = sessions.touch(id).orElseThrow();
        assertThat(session.apiKey()).isEqualTo("pk_secret_key");
        assertThat(session.toString()).doesNotContain("pk_secret_key", session.csrfToken());
        assertThat(id).doesNotContain("pk_secret_key").hasSizeGreaterThanOrEqualTo(43);

        clock.now = clock.now.plus(Duration.ofMinutes(29));
        assertThat(sessions.touch(id)).as("used within the idle time: still there, timer restarted").isPresent();
        clock.now = clock.now.plus(Duration.ofMinutes(29));
        assertThat(sessions.touch(id)).isPresent();
        clock.now = clock.now.plus(Duration.ofMinutes(31));
        assertThat(sessions.touch(id)).as("idle for longer than 30 minutes").isEmpty();
        assertThat(sessions.size()).isZero();

        String polled = sessions.open("pk_polled");
        for (int i = 0; i < 31; i++) {
            clock.now = clock.now.plus(Duration.ofMinutes(1));
            sessions.find(polled, false); // a page refreshing itself is not activity
        }
        assertThat(sessions.find(polled, false)).as("an open tab nobody uses times out").isEmpty();

        String other = sessions.open("pk_other");
        assertThat(sessions.touch("not-a-session")).isEmpty();
        assertThat(sessions.touch(null)).isEmpty();
        sessions.close(other);
        assertThat(sessions.touch(other)).isEmpty();
    }

    @Test
    void signingInInALoopKeepsAtMostTheCapOfSessionsPerKey() {
        MovingClock clock = new MovingClock();
        ConsoleSessions sessions = new ConsoleSessions(clock, Duration.ofMinutes(30));
        String other = sessions.open("pk_other");
        String first = sessions.open("pk_looping");
        String last = first;
        for (int i = 0; i < 5_000; i++) {
            clock.now = clock.now.plusMillis(1);
            last = sessions.open("pk_looping");
        }
        assertThat(sessions.size()).isEqualTo(ConsoleSessions.MAX_PER_KEY + 1);
        assertThat(sessions.touch(last)).as("the newest session").isPresent();
        assertThat(sessions.touch(first)).as("the least recently used one ended").isEmpty();
        assertThat(sessions.touch(other)).as("another key's session").isPresent();
    }

    @Test
    void aBusySessionStillEndsTwelveHoursAfterSignIn() {
        MovingClock clock = new MovingClock();
        ConsoleSessions sessions = new ConsoleSessions(clock, Duration.ofMinutes(30));
        String id = sessions.open("pk_busy");
        for (int i = 0; i < 12 * 6; i++) {
            clock.now = clock.now.plus(Duration.ofMinutes(10));
            assertThat(sessions.touch(id)).as("used every 10 minutes, after %s", Duration.ofMinutes(10L * (i + 1)))
                    .isPresent();
        }
        clock.now = clock.now.plus(Duration.ofMinutes(10));
        assertThat(sessions.touch(id)).as("12 h 10 min after sign-in").isEmpty();
        assertThat(sessions.size()).isZero();
    }
}
