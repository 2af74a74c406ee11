package io.palisade.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.pgwire.PgConnection;
import io.palisade.pgwire.PgServerException;
import io.palisade.pgwire.PgTarget;
import io.palisade.pgwire.Row;
import io.palisade.pgwire.ScramClient;
import io.palisade.pgwire.ScramVerifier;
import io.palisade.pgwire.Sql;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** pgwire's query connection against a real PostgreSQL 16: login methods, results, errors, timeouts, cancel. */
class TestPgConnection {
    private static final Duration CONNECT = Duration.ofSeconds(10);
    private static TestingPostgres postgres;
    private static PgTarget tcp;

    @BeforeAll
    static void start() {
        postgres = new TestingPostgres();
        tcp = PgTarget.tcp(postgres.endpoint());
        try (PgConnection admin = admin()) {
            admin.execute("SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD 'md5-secret'");
            admin.execute("CREATE ROLE clear_user LOGIN PASSWORD " + Sql.quoteLiteral(ScramVerifier.of("clear-secret")));
            admin.execute("CREATE ROLE costly_user LOGIN PASSWORD " + Sql.quoteLiteral(ScramVerifier.of("costly",
                    new byte[16], ScramClient.MAX_ITERATIONS * 2)));
        }
        postgres.prependHba("""
                host all md5_user 127.0.0.1/32 md5
                host all clear_user 127.0.0.1/32 password
                """);
    }

    @AfterAll
    static void stop() {
        if (postgres != null) {
            postgres.close();
        }
    }

    private static PgConnection admin() {
        return PgConnection.open(postgres.adminAccess(), "postgres", CONNECT);
    }

    private static PgConnection tenant() {
        return PgConnection.open(tcp, postgres.credentials().username(), Optional.of(postgres.credentials().password()),
                Map.of("database", postgres.credentials().database()), CONNECT);
    }

    @Test
    void rowsCarryColumnNamesTextValuesAndNulls() {
        try (PgConnection connection = tenant()) {
            List<Row> rows = connection.simpleQuery(
                    "SELECT 1 AS one; SELECT n, CASE WHEN n = 2 THEN NULL ELSE 'v' || n END AS label, 'ü' AS u"
                            + " FROM generate_series(1, 3) n ORDER BY n");
            assertThat(rows).hasSize(3);
            assertThat(rows.getFirst().columns()).containsExactly("n", "label", "u");
            assertThat(rows.getFirst().get("label")).isEqualTo("v1");
            assertThat(rows.get(1).get("label")).isNull();
            assertThat(rows.get(2).getLong("n")).isEqualTo(3);
            assertThat(rows.get(2).get("u")).isEqualTo("ü");
            assertThat(connection.simpleQuery("CREATE TEMP TABLE t (x int)")).isEmpty();
            assertThat(connection.parameterStatus("server_version")).hasValueSatisfying(v -> assertThat(v)
                    .startsWith("16."));
            assertThat(connection.simpleQuery("SELECT pg_backend_pid()").getFirst().getLong("pg_backend_pid"))
                    .isEqualTo(connection.backendPid());
            try (PgConnection other = tenant()) {
                assertThat(connection.cancelKey()).isNotZero().isNotEqualTo(other.cancelKey());
            }
        }
    }

    @Test
    void serverErrorsCarrySqlStateAndLeaveTheConnectionUsable() {
        try (PgConnection connection = tenant()) {
            assertThatThrownBy(() -> connection.simpleQuery("SELECT * FROM missing_table"))
                    .isInstanceOfSatisfying(PgServerException.class, e -> {
                        assertThat(e.sqlState()).isEqualTo("42P01");
                        assertThat(e.severity()).isEqualTo("ERROR");
                        assertThat(e.isFatal()).isFalse();
                        assertThat(e.errorCode()).isEqualTo(ErrorCode.DRIVER_FAILURE);
                    })
                    .hasMessage("ERROR 42P01: relation \"missing_table\" does not exist");
            assertThatThrownBy(() -> connection.execute("CREATE TABLE dup (x int); CREATE TABLE dup (x int)"))
                    .isInstanceOfSatisfying(PgServerException.class, e -> assertThat(e.sqlState()).isEqualTo("42P07"));
            // the failed multi-statement query was one implicit transaction: nothing was created
            assertThat(connection.simpleQuery("SELECT to_regclass('dup') IS NULL AS gone").getFirst().get("gone"))
                    .isEqualTo("t");
        }
    }

    @Test
    void quotingRoundTrips() {
        String tricky = "it's \\ \"quoted\" ;-- ü";
        try (PgConnection connection = admin()) {
            assertThat(connection.simpleQuery("SELECT " + Sql.quoteLiteral(tricky) + " AS v").getFirst().get("v"))
                    .isEqualTo(tricky);
            connection.execute("CREATE TEMP TABLE " + Sql.quoteIdent(tricky) + " (x int)");
            assertThat(connection.simpleQuery("SELECT count(*) FROM pg_class WHERE relname = "
                    + Sql.quoteLiteral(tricky)).getFirst().getLong("count")).isEqualTo(1);
        }
    }

    @Test
    void logsInWithScramMd5CleartextAndTrust() {
        try (PgConnection scram = tenant();
                PgConnection md5 = PgConnection.open(tcp, "md5_user", Optional.of("md5-secret"),
                        Map.of("database", "postgres"), CONNECT);
                PgConnection clear = PgConnection.open(tcp, "clear_user", Optional.of("clear-secret"),
                        Map.of("database", "postgres"), CONNECT);
                PgConnection trust = PgConnection.open(new PgTarget.UnixSocket(postgres.socketFile()),
                        postgres.adminUser(), Optional.empty(), Map.of("database", "postgres"), CONNECT)) {
            assertThat(scram.simpleQuery("SELECT current_user").getFirst().get(0)).isEqualTo("app");
            assertThat(md5.simpleQuery("SELECT current_user").getFirst().get(0)).isEqualTo("md5_user");
            assertThat(clear.simpleQuery("SELECT current_user").getFirst().get(0)).isEqualTo("clear_user");
            assertThat(trust.simpleQuery("SELECT current_user").getFirst().get(0)).isEqualTo(postgres.adminUser());
            assertThat(trust.simpleQuery("SELECT auth_method FROM pg_hba_file_rules WHERE 'md5_user' = ANY(user_name)")
                    .getFirst().get(0)).isEqualTo("md5");
            // only a SCRAM login has a server nonce, and the server draws a new one every time
            try (PgConnection again = tenant()) {
                assertThat(scram.scramServerNonce()).isNotEmpty().isNotEqualTo(again.scramServerNonce());
            }
            assertThat(md5.scramServerNonce()).isEmpty();
            assertThat(trust.scramServerNonce()).isEmpty();
        }
    }

    @Test
    void authenticationFailuresAreClear() {
        assertThatThrownBy(() -> PgConnection.open(tcp, "app", Optional.of("wrong"), Map.of("database", "app"),
                        CONNECT))
                .isInstanceOfSatisfying(PgServerException.class, e -> {
                    assertThat(e.sqlState()).isEqualTo("28P01");
                    assertThat(e.isFatal()).isTrue();
                })
                .hasMessageContaining("password authentication failed for user \"app\"");
        assertThatThrownBy(() -> PgConnection.open(tcp, "app", Optional.empty(), Map.of("database", "app"), CONNECT))
                .isInstanceOfSatisfying(PalisadeException.class,
                        e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.UNAUTHENTICATED))
                .hasMessageContaining("none was given");
        assertThatThrownBy(() -> PgConnection.open(tcp, "costly_user", Optional.of("costly"),
                        Map.of("database", "postgres"), CONNECT))
                .hasMessageContaining("asks for " + ScramClient.MAX_ITERATIONS * 2 + " SCRAM iterations")
                .hasMessageContaining("accepts 1 to " + ScramClient.MAX_ITERATIONS);
        assertThatThrownBy(() -> PgConnection.open(new PgTarget.Tcp("127.0.0.1", 1), "app", Optional.empty(),
                        Map.of(), CONNECT))
                .hasMessageContaining("cannot connect to PostgreSQL at 127.0.0.1:1");
    }

    @Test
    void aReadTimeoutClosesTheConnection() {
        try (PgConnection connection = tenant()) {
            connection.setReadTimeout(Duration.ofMillis(500));
            assertThatThrownBy(() -> connection.execute("SELECT pg_sleep(5)"))
                    .isInstanceOfSatisfying(PalisadeException.class,
                            e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.TIMEOUT))
                    .hasMessageContaining("did not answer within PT0.5S");
            assertThat(connection.isOpen()).isFalse();
            assertThatThrownBy(() -> connection.execute("SELECT 1")).hasMessageContaining("closed");
        }
    }

    @Test
    void cancelAndCloseFromAnotherThread() throws Exception {
        try (PgConnection connection = tenant()) {
            String pid = connection.simpleQuery("SELECT pg_backend_pid()").getFirst().get(0);
            CompletableFuture<Void> canceller = CompletableFuture.runAsync(() -> {
                // a cancel that reaches an idle backend is ignored: send it once the query runs
                awaitSleepRunning(pid);
                connection.cancel();
            });
            long started = System.nanoTime();
            assertThatThrownBy(() -> connection.execute("SELECT pg_sleep(30)"))
                    .isInstanceOfSatisfying(PgServerException.class, e -> assertThat(e.sqlState()).isEqualTo("57014"));
            assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(10));
            canceller.get(5, TimeUnit.SECONDS);
            assertThat(connection.simpleQuery("SELECT 2").getFirst().get(0)).isEqualTo("2");

            CompletableFuture<Void> closer = CompletableFuture.runAsync(() -> {
                awaitSleepRunning(pid);
                connection.close();
            });
            assertThatThrownBy(() -> connection.execute("SELECT pg_sleep(30)"))
                    .isInstanceOf(PalisadeException.class)
                    .hasMessageContaining("closed");
            closer.get(5, TimeUnit.SECONDS);
        }
    }

    /** Waits until the backend {@code pid} runs {@code SELECT pg_sleep(30)}. */
    private static void awaitSleepRunning(String pid) {
        try (PgConnection admin = admin()) {
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(20))
                    .until(() -> !admin.simpleQuery("SELECT 1 FROM pg_stat_activity WHERE pid = " + Integer.parseInt(pid)
                            + " AND state = 'active' AND query = 'SELECT pg_sleep(30)'").isEmpty());
        }
    }
}
