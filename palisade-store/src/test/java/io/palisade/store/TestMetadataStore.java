package io.palisade.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.testing.TestingPostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestMetadataStore {
    private TestingPostgres postgres;
    private MetadataStore store;

    @BeforeAll
    void start() throws Exception {
        postgres = new TestingPostgres();
        try (var c = postgres.connectAsAdmin(); var s = c.createStatement()) {
            s.execute("CREATE DATABASE meta OWNER app");
        }
        store = new MetadataStore("jdbc:postgresql://" + postgres.endpoint() + "/meta",
                postgres.credentials().username(), postgres.credentials().password());
        store.createAccount("acct-a", "a");
        store.createAccount("acct-b", "b");
    }

    @AfterAll
    void stop() {
        store.close();
        postgres.close();
    }

    private static DatabaseRecord record(String id, String account) {
        Instant now = Instant.now();
        return new DatabaseRecord(id, account, "label-" + id, io.palisade.spi.Rung.PROCESS, PostgresVersion.V16, Plan.SMALL, true, null, null, 300,
                "host-1", DatabaseState.PROVISIONING, null, "app", "app", "v1:enc", "hash", "v1:tok", Optional.empty(),
                Optional.empty(), Map.of("team", "billing", "quote\"d", "x\\y"), now, now, now);
    }

    @Test
    void roundTripsAndScopesByAccount() {
        store.insert(record("db-round001", "acct-a"));
        DatabaseRecord found = store.find("db-round001").orElseThrow();
        assertThat(found.plan()).isEqualTo(Plan.SMALL);
        assertThat(found.labels()).containsEntry("team", "billing").containsEntry("quote\"d", "x\\y");
        assertThat(found.endpoint()).isEmpty();
        assertThat(found.suspendAfterSeconds()).isEqualTo(300);
        assertThat(store.find("acct-a", "db-round001")).isPresent();
        assertThat(store.find("acct-b", "db-round001")).as("another account's database is absent").isEmpty();
        assertThat(store.list("acct-b")).isEmpty();

        store.setEndpoint("db-round001", Optional.of(new Endpoint("127.0.0.1", 5555)));
        assertThat(store.find("db-round001").orElseThrow().endpoint()).contains(new Endpoint("127.0.0.1", 5555));
        assertThat(store.delete("db-round001")).isTrue();
        assertThat(store.find("db-round001")).isEmpty();
    }

    @Test
    void stateMachineRejectsIllegalTransitions() {
        store.insert(record("db-state001", "acct-a"));
        assertThat(store.transition("db-state001", DatabaseState.RUNNING, null).state()).isEqualTo(DatabaseState.RUNNING);
        assertThat(store.transition("db-state001", DatabaseState.DELETING, null).state()).isEqualTo(DatabaseState.DELETING);
        assertThatThrownBy(() -> store.transition("db-state001", DatabaseState.RUNNING, null))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("is deleting and cannot become running")
                .extracting(e -> ((PalisadeException) e).errorCode())
                .isEqualTo(ErrorCode.CONFLICT);
        assertThatThrownBy(() -> store.transition("db-missing1", DatabaseState.RUNNING, null))
                .extracting(e -> ((PalisadeException) e).errorCode())
                .isEqualTo(ErrorCode.NOT_FOUND);
        store.delete("db-state001");
    }

    @Test
    void apiKeysAreStoredHashed() throws Exception {
        store.addApiKey("acct-a", "pk_secret_value_123456");
        assertThat(store.accountForKey("pk_secret_value_123456")).contains("acct-a");
        assertThat(store.accountForKey("pk_secret_value_123457")).isEmpty();
        try (var c = java.sql.DriverManager.getConnection("jdbc:postgresql://" + postgres.endpoint() + "/meta",
                        postgres.credentials().username(), postgres.credentials().password());
                var s = c.createStatement();
                var rs = s.executeQuery("SELECT key_hash FROM api_keys")) {
            while (rs.next()) {
                assertThat(rs.getString(1)).doesNotContain("secret").hasSize(64);
            }
        }
    }

    @Test
    void secretBoxEncryptsAndRejectsTampering() throws Exception {
        Path dir = Files.createTempDirectory("secretbox");
        try {
            SecretBox box = SecretBox.open(dir.resolve("master.key"));
            String sealed = box.encrypt("hunter2");
            assertThat(sealed).doesNotContain("hunter2");
            assertThat(box.decrypt(sealed)).isEqualTo("hunter2");
            assertThat(SecretBox.open(dir.resolve("master.key")).decrypt(sealed)).as("key persists").isEqualTo("hunter2");
            assertThat(Files.getPosixFilePermissions(dir.resolve("master.key")).toString()).isEqualTo("[OWNER_READ, OWNER_WRITE]");
            String tampered = sealed.substring(0, sealed.length() - 2) + (sealed.endsWith("A") ? "BB" : "AA");
            assertThatThrownBy(() -> box.decrypt(tampered)).isInstanceOf(PalisadeException.class);
            assertThat(SecretBox.randomId("db")).matches("db-[a-z2-9]{8}");
        } finally {
            io.palisade.host.Processes.run(java.util.List.of("rm", "-rf", dir.toString()), java.time.Duration.ofSeconds(10), null);
        }
    }
}
