package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class TestWarningLimiter {
    @Test
    void warnsOncePerKeyPerInterval() throws Exception {
        WarningLimiter limiter = new WarningLimiter(200_000_000L);
        assertThat(limiter.shouldWarn("db-a")).isTrue();
        assertThat(limiter.shouldWarn("db-a")).isFalse();
        assertThat(limiter.shouldWarn("db-b")).as("keys are independent").isTrue();
        Thread.sleep(250);
        assertThat(limiter.shouldWarn("db-a")).as("after the interval").isTrue();
    }
}
