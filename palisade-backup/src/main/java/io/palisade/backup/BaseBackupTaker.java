package io.palisade.backup;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.backup.store.ArchiveStore;
import io.palisade.backup.store.DataKey;
import io.palisade.backup.store.Sealer;
import io.palisade.pgwire.BaseBackupOptions;
import io.palisade.pgwire.BaseBackupResult;
import io.palisade.pgwire.BaseBackupSink;
import io.palisade.pgwire.PgTarget;
import io.palisade.pgwire.ReplicationConnection;
import io.palisade.spi.AdminAccess;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * Takes an online base backup over the replication protocol ({@code BASE_BACKUP}, fast checkpoint, rate-limited, with
 * PostgreSQL's manifest, without WAL: the archiver streams that) and writes it into the archive as sealed parts plus a
 * manifest and a meta object. Stateless; one call per backup.
 */
final class BaseBackupTaker {
    static final int PART_SIZE = 16 * 1024 * 1024;
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final ArchiveStore store;
    private final Sealer sealer;

    BaseBackupTaker(ArchiveStore store, Sealer sealer) {
        this.store = requireNonNull(store, "store is null");
        this.sealer = requireNonNull(sealer, "sealer is null");
    }

    /** What was written. */
    record Taken(BaseBackupResult result, BaseBackupMeta meta, long bytes) {}

    Taken take(AdminAccess admin, String archiveId, String backupId, DataKey key, int maxRateKbps, LongConsumer progress,
            BaseBackupCancel cancel) {
        PartWriter writer = new PartWriter(archiveId, backupId, key, progress, cancel);
        try (ReplicationConnection replication = ReplicationConnection.open(PgTarget.of(admin), admin.user(),
                admin.password(), Map.of("application_name", "palisade_base_backup"), Duration.ofSeconds(10))) {
            cancel.streamingFrom(replication::abort);
            String systemId = replication.identifySystem().systemId();
            BaseBackupResult result = replication.baseBackup(
                    options("palisade " + backupId, false, maxRateKbps), writer);
            writer.finish();
            String manifestKey = ArchiveLayout.baseManifest(archiveId, backupId);
            byte[] manifest = writer.manifest.toByteArray();
            store.put(manifestKey, sealer.seal(key, manifestKey, manifest));
            BaseBackupMeta meta = new BaseBackupMeta(backupId, systemId, result.startTimeline(), result.start().toString(),
                    result.end().toString(), writer.parts, sha256(manifest));
            String metaKey = ArchiveLayout.baseMeta(archiveId, backupId);
            store.put(metaKey, sealer.seal(key, metaKey, MAPPER.writeValueAsBytes(meta)));
            return new Taken(result, meta, writer.total);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot write the base backup description: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw cancel.failure(backupId, e).orElseThrow(() -> e); // an aborted connection fails with why
        } finally {
            cancel.doneStreaming();
        }
    }

    static BaseBackupOptions options(String label, boolean includeWal, int maxRateKbps) {
        BaseBackupOptions options = BaseBackupOptions.of(label)
                .withCheckpoint(BaseBackupOptions.Checkpoint.FAST)
                .withWal(includeWal)
                .withManifest(true);
        return maxRateKbps > 0 ? options.withMaxRate(maxRateKbps) : options;
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Cuts the tar stream into parts, seals and stores each as it fills. Not thread-safe. */
    private final class PartWriter implements BaseBackupSink {
        private final String archiveId;
        private final String backupId;
        private final DataKey key;
        private final LongConsumer progress;
        private final List<BaseBackupMeta.Part> parts = new ArrayList<>();
        private final ManifestBuffer manifest = new ManifestBuffer();
        private byte[] part = new byte[PART_SIZE];
        private int filled;
        private long total;
        private boolean inManifest;

        private final BaseBackupCancel cancel;

        PartWriter(String archiveId, String backupId, DataKey key, LongConsumer progress,
                BaseBackupCancel cancel) {
            this.cancel = cancel;
            this.archiveId = archiveId;
            this.backupId = backupId;
            this.key = key;
            this.progress = progress;
        }

        @Override
        public void archiveStart(String name, String tablespaceLocation) {
            if (tablespaceLocation != null && !tablespaceLocation.isEmpty()) {
                throw new PalisadeException(ErrorCode.CONFLICT, "the database has a tablespace at " + tablespaceLocation
                        + "; palisade backs up only the main data directory");
            }
        }

        @Override
        public void manifestStart() {
            inManifest = true;
        }

        @Override
        public void data(byte[] bytes, int offset, int length) {
            if (inManifest) {
                manifest.append(bytes, offset, length);
                return;
            }
            while (length > 0) {
                int take = Math.min(length, PART_SIZE - filled);
                System.arraycopy(bytes, offset, part, filled, take);
                filled += take;
                offset += take;
                length -= take;
                total += take;
                if (filled == PART_SIZE) {
                    writePart();
                }
            }
            progress.accept(total);
        }

        @Override
        public void progress(long bytes) {}

        void finish() {
            if (filled > 0 || parts.isEmpty()) {
                writePart();
            }
        }

        private void writePart() {
            cancel.throwIfCancelled(backupId);
            byte[] plain = java.util.Arrays.copyOf(part, filled);
            String partKey = ArchiveLayout.basePart(archiveId, backupId, parts.size());
            store.put(partKey, sealer.seal(key, partKey, plain));
            parts.add(new BaseBackupMeta.Part(partKey, plain.length, sha256(plain)));
            filled = 0;
        }
    }
}
