package io.palisade.api;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.spi.Backend;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ServerLogin;
import io.palisade.spi.TenantCredentials;
import io.palisade.spi.VerifiedLogins;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** What {@link VerifiedLogins} and {@link RunningBackends} keep, for how long, and what a forget fences out. */
class TestRememberedChecks {
    private static final TenantCredentials LOGIN = new TenantCredentials("app", "app", "secret");
    private static final Backend BACKEND = new Backend(new Endpoint("127.0.0.1", 5432), "app", "app",
            new ServerLogin("app", "app"));

    private final AtomicLong now = new AtomicLong(1_000);

    @Test
    void aLoginIsKeptForItsSecretAndDatabaseUntilTheTtl() {
        VerifiedLogins logins = new VerifiedLogins(now::get, Duration.ofSeconds(5));
        logins.remember(logins.stamp(), "db1", "hash-a", LOGIN);

        assertThat(logins.find("db1", "hash-a")).contains(LOGIN);
        assertThat(logins.find("db1", "hash-b")).as("another secret").isEmpty();
        assertThat(logins.find("db2", "hash-a")).as("another database").isEmpty();

        now.addAndGet(Duration.ofSeconds(5).toNanos() - 1);
        assertThat(logins.find("db1", "hash-a")).isPresent();
        now.addAndGet(1);
        assertThat(logins.find("db1", "hash-a")).isEmpty();
        assertThat(logins.size()).isZero();
    }

    @Test
    void forgetDropsOneDatabaseAndFencesOutLoadsThatBeganBefore() {
        VerifiedLogins logins = new VerifiedLogins(now::get, Duration.ofSeconds(5));
        logins.remember(logins.stamp(), "db1", "hash-a", LOGIN);
        logins.remember(logins.stamp(), "db2", "hash-a", LOGIN);
        long before = logins.stamp(); // a load reads the store ...

        logins.forget("db1"); // ... the secrets change meanwhile ...
        logins.remember(before, "db1", "hash-c", LOGIN); // ... and its result comes too late

        assertThat(logins.find("db1", "hash-a")).isEmpty();
        assertThat(logins.find("db1", "hash-c")).isEmpty();
        assertThat(logins.find("db2", "hash-a")).contains(LOGIN);
        logins.remember(logins.stamp(), "db1", "hash-c", LOGIN);
        assertThat(logins.find("db1", "hash-c")).contains(LOGIN);
    }

    @Test
    void nothingNewIsKeptWhenFullOfFreshEntries() {
        VerifiedLogins logins = new VerifiedLogins(now::get, Duration.ofSeconds(5));
        for (int i = 0; i < VerifiedLogins.MAX_ENTRIES; i++) {
            logins.remember(logins.stamp(), "db" + i, "hash", LOGIN);
        }
        logins.remember(logins.stamp(), "one-more", "hash", LOGIN);
        assertThat(logins.find("one-more", "hash")).isEmpty();
        assertThat(logins.size()).isEqualTo(VerifiedLogins.MAX_ENTRIES);

        now.addAndGet(Duration.ofSeconds(5).toNanos());
        logins.remember(logins.stamp(), "one-more", "hash", LOGIN);
        assertThat(logins.find("one-more", "hash")).contains(LOGIN);
        assertThat(logins.size()).isEqualTo(1);
    }

    @Test
    void aBackendIsKeptUntilTheTtlOrAForget() {
        RunningBackends backends = new RunningBackends(now::get, Duration.ofSeconds(5));
        backends.remember(backends.stamp(), "db1", BACKEND);
        backends.remember(backends.stamp(), "db2", BACKEND);
        assertThat(backends.find("db1")).contains(BACKEND);

        long before = backends.stamp();
        backends.forget("db1");
        backends.remember(before, "db1", BACKEND);
        assertThat(backends.find("db1")).as("a load that read the store before the forget").isEmpty();
        assertThat(backends.find("db2")).contains(BACKEND);

        now.addAndGet(Duration.ofSeconds(5).toNanos());
        assertThat(backends.find("db2")).isEmpty();
    }
}
