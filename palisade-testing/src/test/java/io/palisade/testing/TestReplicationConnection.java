package io.palisade.testing;

import static java.nio.charset.StandardCharsets.US_ASCII;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.pgwire.BaseBackupOptions;
import io.palisade.pgwire.BaseBackupResult;
import io.palisade.pgwire.BaseBackupSink;
import io.palisade.pgwire.Lsn;
import io.palisade.pgwire.PgConnection;
import io.palisade.pgwire.PgServerException;
import io.palisade.pgwire.ReplicationConnection;
import io.palisade.pgwire.SlotInfo;
import io.palisade.pgwire.SystemIdentity;
import io.palisade.pgwire.WalMessage;
import io.palisade.pgwire.WalStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** pgwire's replication client against a real PostgreSQL 16: slots, WAL streaming, BASE_BACKUP. */
class TestReplicationConnection {
    private static final Duration CONNECT = Duration.ofSeconds(10);
    private static TestingPostgres postgres;

    @BeforeAll
    static void start() {
        postgres = new TestingPostgres();
    }

    @AfterAll
    static void stop() {
        if (postgres != null) {
            postgres.close();
        }
    }

    private static ReplicationConnection replication() {
        return ReplicationConnection.open(postgres.adminAccess(), CONNECT);
    }

    private static PgConnection admin() {
        return PgConnection.open(postgres.adminAccess(), "postgres", CONNECT);
    }

    @Test
    void identifySystemOverUnixSocketWithTrustAndOverTcpWithScram() {
        String systemId;
        try (PgConnection sql = admin()) {
            systemId = sql.simpleQuery("SELECT system_identifier FROM pg_control_system()").getFirst().get(0);
        }
        try (ReplicationConnection unix = replication();
                ReplicationConnection tcp = ReplicationConnection.open(postgres.adminAccessTcp(), CONNECT)) {
            SystemIdentity viaUnix = unix.identifySystem();
            SystemIdentity viaTcp = tcp.identifySystem();
            assertThat(viaUnix.systemId()).isEqualTo(systemId);
            assertThat(viaTcp.systemId()).isEqualTo(systemId);
            assertThat(viaUnix.timeline()).isEqualTo(1);
            assertThat(viaUnix.xlogPos().isValid()).isTrue();
            assertThat(viaTcp.xlogPos()).isGreaterThanOrEqualTo(viaUnix.xlogPos());
            assertThat(unix.walSegmentSize()).isEqualTo(Lsn.DEFAULT_SEGMENT_SIZE);
        }
    }

    @Test
    void createReadAndDropPhysicalSlots() {
        try (ReplicationConnection replication = replication()) {
            Lsn reserved = replication.createPhysicalSlot("t_reserved", true);
            assertThat(reserved.isValid()).isTrue();
            assertThat(replication.readSlot("t_reserved")).hasValueSatisfying(slot -> {
                assertThat(slot.slotType()).isEqualTo("physical");
                assertThat(slot.restartLsn()).contains(reserved);
                assertThat(slot.restartTimeline()).hasValue(1);
            });
            replication.createPhysicalSlot("t_lazy", false);
            assertThat(replication.readSlot("t_lazy").flatMap(SlotInfo::restartLsn)).isEmpty();

            assertThatThrownBy(() -> replication.createPhysicalSlot("t_reserved", true))
                    .isInstanceOfSatisfying(PgServerException.class,
                            e -> assertThat(e.sqlState()).isEqualTo("42710"));
            // the error left the connection usable
            replication.dropSlot("t_reserved", false);
            replication.dropSlot("t_lazy", true);
            assertThat(replication.readSlot("t_reserved")).isEmpty();
            assertThat(replication.readSlot("t_lazy")).isEmpty();
        }
        assertThatThrownBy(() -> {
            try (ReplicationConnection replication = replication()) {
                replication.createPhysicalSlot("Bad-Name", false);
            }
        }).hasMessageContaining("slot name 'Bad-Name' is invalid");
    }

    @Test
    void streamsTheWalOfAnInsertAndStatusUpdatesAdvanceTheSlot() throws Exception {
        String marker = "palisade-wal-marker-" + UUID.randomUUID();
        try (ReplicationConnection replication = ReplicationConnection.open(postgres.adminAccess(),
                        Map.of("application_name", "pgwire_receiver"), CONNECT);
                PgConnection sql = admin()) {
            sql.execute("CREATE TABLE wal_probe (id int, body text)");
            Lsn restart = replication.createPhysicalSlot("t_stream", true);
            Lsn start = restart.segmentStart(Lsn.DEFAULT_SEGMENT_SIZE);
            WalStream stream = replication.startPhysical(Optional.of("t_stream"), start, 1);
            // three copies: a WAL page boundary can split one, never all three
            sql.execute("INSERT INTO wal_probe VALUES (1, repeat(" + io.palisade.pgwire.Sql.quoteLiteral(marker + "|")
                    + ", 3))");

            String window = "";
            boolean found = false;
            long bytes = 0;
            Lsn next = start;
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!found && System.nanoTime() < deadline) {
                Optional<WalMessage> message = stream.next(Duration.ofSeconds(1));
                if (message.isPresent() && message.get() instanceof WalMessage.XLogData data) {
                    assertThat(data.walStart()).as("WAL arrives without gaps").isEqualTo(next);
                    ByteBuffer chunk = data.data();
                    byte[] copy = new byte[chunk.remaining()];
                    chunk.get(copy);
                    // search this message plus the end of the previous one, in case the marker straddles them
                    window = window.substring(Math.max(0, window.length() - marker.length()))
                            + new String(copy, US_ASCII);
                    found = window.contains(marker);
                    bytes += copy.length;
                    next = data.walEnd();
                } else if (message.isPresent() && message.get() instanceof WalMessage.Keepalive keepalive
                        && keepalive.replyRequested()) {
                    stream.sendStatus(next, start, start, false);
                }
            }
            assertThat(found).as("the inserted row's text is in the WAL (" + bytes + " bytes read)").isTrue();
            assertThat(sql.simpleQuery("SELECT application_name FROM pg_stat_replication").getFirst()
                    .get("application_name")).isEqualTo("pgwire_receiver");

            Lsn flushed = next;
            stream.sendStatus(flushed, flushed, Lsn.INVALID, false);
            await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(Lsn.parse(sql.simpleQuery(
                            "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 't_stream'")
                    .getFirst().get("restart_lsn"))).isEqualTo(flushed));

            // nothing more to say for a moment: next() returns empty instead of blocking
            await().atMost(Duration.ofSeconds(20))
                    .until(() -> stream.next(Duration.ofMillis(200)).isEmpty());

            assertThat(stream.stop(Duration.ofSeconds(10))).isEmpty();
            assertThat(stream.isActive()).isFalse();
            assertThat(replication.identifySystem().xlogPos()).isGreaterThanOrEqualTo(flushed);
            replication.dropSlot("t_stream", true);
        }
    }

    @Test
    void startingAheadOfTheServerFailsWithItsErrorAndKeepsTheConnection() {
        try (ReplicationConnection replication = replication()) {
            Lsn ahead = replication.identifySystem().xlogPos().plus(64L * Lsn.DEFAULT_SEGMENT_SIZE);
            WalStream stream = replication.startPhysical(Optional.empty(), ahead, 1);
            assertThatThrownBy(() -> stream.next(Duration.ofSeconds(10)))
                    .isInstanceOf(PgServerException.class)
                    .hasMessageContaining("ahead of the WAL flush position");
            assertThat(stream.isActive()).isFalse();
            assertThat(replication.identifySystem().timeline()).isEqualTo(1);
        }
    }

    @Test
    void baseBackupStreamsTarArchivesAndAManifest() throws Exception {
        Path dir = TestingDirectories.newWorkDir("bb");
        try (ReplicationConnection replication = replication()) {
            RecordingSink sink = new RecordingSink(dir);
            BaseBackupResult result = replication.baseBackup(BaseBackupOptions.of("pgwire test")
                    .withMaxRate(BaseBackupOptions.MAX_RATE_KB / 4)
                    .withProgress(true), sink);

            assertThat(result.startTimeline()).isEqualTo(1);
            assertThat(result.endTimeline()).isEqualTo(1);
            assertThat(result.end()).isGreaterThanOrEqualTo(result.start());
            assertThat(sink.started).isEqualTo(result.start());
            assertThat(result.tablespaces()).hasSize(1);
            assertThat(result.tablespaces().getFirst().sizeKb()).isPresent();
            assertThat(sink.archives).containsOnlyKeys("base.tar");
            assertThat(sink.archiveLocations).containsExactly("");
            assertThat(sink.lastProgress).isEqualTo(Files.size(sink.archives.get("base.tar")));

            List<String> entries = tarEntries(sink.archives.get("base.tar"));
            assertThat(entries).contains("PG_VERSION", "global/pg_control", "backup_label");

            JsonNode manifest = new ObjectMapper().readTree(sink.manifest.toByteArray());
            assertThat(manifest.get("PostgreSQL-Backup-Manifest-Version").asInt()).isGreaterThanOrEqualTo(1);
            List<String> paths = new ArrayList<>();
            manifest.get("Files").forEach(file -> paths.add(file.get("Path").asText()));
            assertThat(paths).contains("PG_VERSION", "global/pg_control");
            JsonNode range = manifest.get("WAL-Ranges").get(0);
            assertThat(Lsn.parse(range.get("Start-LSN").asText())).isEqualTo(result.start());
            assertThat(Lsn.parse(range.get("End-LSN").asText())).isEqualTo(result.end());

            // the connection is ready for the next command
            assertThat(replication.identifySystem().xlogPos()).isGreaterThanOrEqualTo(result.end());
        } finally {
            TestingDirectories.deleteRecursively(dir);
        }
    }

    @Test
    void aFailingSinkAbortsTheBackupAndClosesTheConnection() {
        try (ReplicationConnection replication = replication()) {
            BaseBackupSink failing = new BaseBackupSink() {
                @Override
                public void archiveStart(String name, String location) {}

                @Override
                public void data(byte[] buffer, int offset, int length) throws IOException {
                    throw new IOException("disk full");
                }

                @Override
                public void manifestStart() {}
            };
            assertThatThrownBy(() -> replication.baseBackup(BaseBackupOptions.of("fails"), failing))
                    .hasMessageContaining("disk full")
                    .hasMessageContaining("aborted");
            assertThat(replication.isOpen()).isFalse();
        }
        // the server let go of the backup: another one can start at once
        try (ReplicationConnection replication = replication()) {
            assertThat(replication.baseBackup(BaseBackupOptions.of("after").withManifest(false), new NullSink())
                    .end().isValid()).isTrue();
        }
    }

    /** Entry names of a ustar archive. */
    private static List<String> tarEntries(Path tar) throws IOException {
        byte[] bytes = Files.readAllBytes(tar);
        List<String> names = new ArrayList<>();
        int at = 0;
        while (at + 512 <= bytes.length && bytes[at] != 0) {
            String name = field(bytes, at, 100);
            String prefix = field(bytes, at + 345, 155);
            long size = Long.parseLong(field(bytes, at + 124, 12).trim(), 8);
            names.add(prefix.isEmpty() ? name : prefix + "/" + name);
            at += 512 + (int) ((size + 511) / 512 * 512);
        }
        return names;
    }

    private static String field(byte[] bytes, int at, int length) {
        int end = at;
        while (end < at + length && bytes[end] != 0) {
            end++;
        }
        return new String(bytes, at, end - at, US_ASCII);
    }

    private static final class RecordingSink implements BaseBackupSink {
        private final Path dir;
        final Map<String, Path> archives = new LinkedHashMap<>();
        final List<String> archiveLocations = new ArrayList<>();
        final ByteArrayOutputStream manifest = new ByteArrayOutputStream();
        Lsn started;
        long lastProgress = -1;
        private OutputStream current;

        RecordingSink(Path dir) {
            this.dir = dir;
        }

        @Override
        public void started(Lsn start, int timeline, List<BaseBackupResult.Tablespace> tablespaces) {
            started = start;
        }

        @Override
        public void archiveStart(String name, String location) throws IOException {
            closeCurrent();
            Path file = dir.resolve(name);
            archives.put(name, file);
            archiveLocations.add(location);
            current = Files.newOutputStream(file);
        }

        @Override
        public void data(byte[] buffer, int offset, int length) throws IOException {
            current.write(buffer, offset, length);
        }

        @Override
        public void manifestStart() throws IOException {
            closeCurrent();
            current = manifest;
        }

        @Override
        public void progress(long bytesDone) {
            assertThat(bytesDone).isGreaterThanOrEqualTo(lastProgress);
            lastProgress = bytesDone;
        }

        private void closeCurrent() throws IOException {
            if (current != null && current != manifest) {
                current.close();
            }
        }
    }

    private static final class NullSink implements BaseBackupSink {
        @Override
        public void archiveStart(String name, String location) {}

        @Override
        public void data(byte[] buffer, int offset, int length) {}

        @Override
        public void manifestStart() {}
    }
}
