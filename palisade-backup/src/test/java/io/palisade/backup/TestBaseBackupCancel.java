package io.palisade.backup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.host.Processes;
import io.palisade.pgwire.PgConnection;
import io.palisade.pgwire.ReplicationConnection;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.testing.TestingPostgres;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A base backup blocked on a server that stopped answering (a suspended VM answers nothing) ends as soon as it is
 * cancelled, with why, instead of at its read timeout: against a real PostgreSQL whose walsender is frozen (SIGSTOP).
 */
class TestBaseBackupCancel {
    private static final Duration CONNECT = Duration.ofSeconds(10);

    @Test
    void cancelAbortsAReadBlockedOnAFrozenServer() throws Exception {
        try (TestingPostgres postgres = new TestingPostgres();
                PgConnection admin = PgConnection.open(postgres.adminAccess(), "postgres", CONNECT)) {
            ReplicationConnection replication = ReplicationConnection.open(postgres.adminAccess(),
                    Map.of("application_name", "frozen_walsender"), CONNECT);
            BaseBackupCancel cancel = new BaseBackupCancel();
            cancel.streamingFrom(replication::abort);
            String pid = admin.simpleQuery("SELECT pid FROM pg_stat_activity WHERE application_name ="
                    + " 'frozen_walsender'").getFirst().get(0);
            Processes.run(List.of("kill", "-STOP", pid), Duration.ofSeconds(5), null);
            try {
                CompletableFuture<Object> blocked = CompletableFuture.supplyAsync(() -> {
                    try {
                        return replication.identifySystem();
                    } catch (RuntimeException e) {
                        throw cancel.failure("bb-test", e).orElseThrow(() -> e);
                    }
                });
                Thread.sleep(300);
                assertThat(blocked).as("the frozen server does not answer").isNotDone();

                long start = System.nanoTime();
                cancel.cancel("its database was suspended");
                assertThatThrownBy(() -> blocked.get(5, TimeUnit.SECONDS)).as("the blocked read ends at once").cause()
                        .isInstanceOf(PalisadeException.class)
                        .hasMessage("base backup bb-test was cancelled: its database was suspended")
                        .satisfies(e -> assertThat(((PalisadeException) e).errorCode()).isEqualTo(ErrorCode.CONFLICT));
                assertThat((System.nanoTime() - start) / 1_000_000).as("ms to end the blocked read").isLessThan(5_000);
            } finally {
                Processes.run(List.of("kill", "-CONT", pid), Duration.ofSeconds(5), null);
                replication.close();
            }
        }
    }

    @Test
    void aConnectionRegisteredAfterTheCancelIsAbortedAtOnce() {
        try (TestingPostgres postgres = new TestingPostgres()) {
            BaseBackupCancel cancel = new BaseBackupCancel();
            assertThat(cancel.failure("bb-x", null)).isEmpty();
            cancel.cancel("its database is being deleted");
            cancel.cancel("a later reason");
            try (ReplicationConnection replication = ReplicationConnection.open(postgres.adminAccess(), CONNECT)) {
                cancel.streamingFrom(replication::abort);
                assertThatThrownBy(replication::identifySystem).isInstanceOf(RuntimeException.class);
            }
            assertThat(cancel.failure("bb-x", null)).get().extracting(Throwable::getMessage)
                    .isEqualTo("base backup bb-x was cancelled: its database is being deleted");
        }
    }
}
