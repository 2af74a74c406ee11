package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class TestWarningLimiter {
    @Test
    void warnsOncePerKeyPerInterval() throws Exception {
        WarningLimiter limiter = new WarningLimiter(2_000_000_000L); // 2 s: the two calls below fit in it on a loaded host
        assertThat(limiter.shouldWarn("db-a")).isTrue();
        assertThat(limiter.shouldWarn("db-a")).isFalse();
        assertThat(limiter.shouldWarn("db-b")).as("keys are independent").isTrue();
        Thread.sleep(2_100);
        assertThat(limiter.shouldWarn("db-a")).as("after the interval").isTrue();
    }
}
