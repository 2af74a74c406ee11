package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The disk-loss drill: a writer commits continuously (synchronous commit) into a database, its instance and volume
 * are destroyed behind palisade's back, and {@code latest} is restored into a new database; the result counts
 * acknowledged commits against the restored ones.
 */
final class DiskLoss {
    private DiskLoss() {}

    record Result(String sourceId, String restoredId, long acknowledged, long olderThanOneSecond, long restored,
            long missingOld, long missingAll) {
        String describe(String what) {
            return String.format("disk loss (%s): %d acknowledged, %d of them > 1 s before the loss; %d rows restored;"
                    + " missing: %d of the older ones, %d of all acknowledged", what, acknowledged, olderThanOneSecond,
                    restored, missingOld, missingAll);
        }
    }

    /**
     * Creates a database with {@code createBody}, writes for {@code writeFor}, calls {@code destroy} with its id, then
     * restores {@code latest} into a new database on {@code restoreIsolation}.
     */
    static Result run(TestingPalisade palisade, String createBody, String restoreIsolation, Duration writeFor,
            Consumer<String> destroy)
            throws Exception {
        TestingPalisade.Response created = palisade.post("/v1/databases", createBody);
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        String id = created.json().get("id").asText();
        String url = created.json().get("connection_url").asText();
        BackupChecks.execute(url, "create table commits (n bigint primary key, at timestamptz not null default now())");
        BackupChecks.awaitFirstBackup(palisade, id);

        // acknowledged commit number → when the acknowledgement arrived
        ConcurrentSkipListMap<Long, Instant> acknowledged = new ConcurrentSkipListMap<>();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Connection> writing = new AtomicReference<>();
        Thread writer = Thread.ofPlatform().name("disk-loss-writer").start(() -> {
            try (Connection c = PgUrls.connect(url);
                    PreparedStatement insert = c.prepareStatement("insert into commits (n) values (?)")) {
                writing.set(c);
                for (long n = 1; !stop.get() && n < 100_000; n++) {
                    insert.setLong(1, n);
                    insert.executeUpdate();
                    acknowledged.put(n, Instant.now());
                    Thread.sleep(5);
                }
            } catch (SQLException | InterruptedException e) {
                // the loss: the connection dies
            }
        });
        Thread.sleep(writeFor.toMillis());
        Instant lostAt = Instant.now();
        destroy.accept(id);
        stop.set(true);
        // a writer blocked on a server that vanished without a reset (a killed QEMU: nothing answers on its link)
        // would wait out its socket; the loss is done, so nothing can be acknowledged any more: abort its connection
        if (!writer.join(Duration.ofSeconds(2)) && writing.get() != null) {
            writing.get().abort(Runnable::run);
        }
        writer.join(Duration.ofSeconds(30));
        assertThat(writer.isAlive()).as("the writer stopped after the loss").isFalse();

        TestingPalisade.Response restored = palisade.post("/v1/databases",
                "{\"label\":\"loss-restored\",\"isolation\":\"" + restoreIsolation + "\",\"restore\":{\"from\":\"" + id
                        + "\",\"latest\":true}}");
        assertThat(restored.status()).as(restored.body()).isEqualTo(201);
        Set<Long> present = new HashSet<>();
        try (Connection c = PgUrls.connect(restored.json().get("connection_url").asText());
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("select n from commits")) {
            while (rs.next()) {
                present.add(rs.getLong(1));
            }
        }
        long older = acknowledged.values().stream().filter(at -> at.isBefore(lostAt.minusSeconds(1))).count();
        long missingOld = acknowledged.entrySet().stream()
                .filter(e -> e.getValue().isBefore(lostAt.minusSeconds(1)) && !present.contains(e.getKey())).count();
        long missingAll = acknowledged.keySet().stream().filter(n -> !present.contains(n)).count();
        return new Result(id, restored.json().get("id").asText(), acknowledged.size(), older, present.size(), missingOld,
                missingAll);
    }
}
