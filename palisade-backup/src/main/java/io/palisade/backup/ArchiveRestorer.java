package io.palisade.backup;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.backup.store.ArchiveStore;
import io.palisade.backup.store.DataKey;
import io.palisade.backup.store.Sealer;
import io.palisade.backup.store.StoredObject;
import io.palisade.pgwire.Lsn;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.store.BaseBackupRecord;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.io.SequenceInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * Builds a data directory from an archive: the chosen base backup's parts (each checked against its SHA-256 and
 * authenticated on decryption), PostgreSQL's manifest check, then every archived WAL byte from the backup's start
 * staged as whole segment files in {@code pg_wal} (a gap or a corrupt chunk fails, naming the object), and the
 * recovery settings for the target. PostgreSQL then replays on start. Stateless; one call per restore.
 */
final class ArchiveRestorer {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final ArchiveStore store;
    private final Sealer sealer;

    ArchiveRestorer(ArchiveStore store, Sealer sealer) {
        this.store = requireNonNull(store, "store is null");
        this.sealer = requireNonNull(sealer, "sealer is null");
    }

    /**
     * Writes the data directory {@code dir}. {@code stopAtTarget}: false to replay all archived WAL (used again when
     * PostgreSQL reports that no commit follows the target time, so the end of the archive is the state at the target).
     */
    long build(String archiveId, DataKey key, BaseBackupRecord backup, RestoreTarget target, boolean stopAtTarget,
            long archivedLsn, long stageUpTo, Path dir, RestoreProgress progress) {
        progress.update("downloading base backup " + backup.id(), 0, 0);
        BaseBackupMeta meta = readMeta(archiveId, backup.id(), key);
        long[] restored = {0};
        try (InputStream tar = partsStream(meta, key)) {
            DataDirectoryWriter.extract(tar, dir, bytes -> {
                restored[0] = bytes;
                progress.update("extracting base backup " + backup.id(), bytes, 0);
            });
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot read base backup " + backup.id() + ": "
                    + e.getMessage(), e);
        }
        String manifestKey = ArchiveLayout.baseManifest(archiveId, backup.id());
        byte[] manifest = sealer.open(key, manifestKey, store.get(manifestKey));
        if (!BaseBackupTaker.sha256(manifest).equals(meta.manifestSha256())) {
            throw corrupt(manifestKey, "its SHA-256 differs from the one recorded at backup time");
        }
        progress.update("verifying files against the backup manifest", restored[0], 0);
        DataDirectoryWriter.verify(dir, manifest);
        try {
            Files.write(dir.resolve("backup_manifest"), manifest);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot write backup_manifest into " + dir, e);
        }
        long consistentAt = Lsn.parse(meta.endLsn()).value();
        long required = Long.compareUnsigned(archivedLsn, consistentAt) > 0 ? archivedLsn : consistentAt;
        if (stageUpTo != 0 && Long.compareUnsigned(required, stageUpTo) > 0) {
            required = Long.compareUnsigned(stageUpTo, consistentAt) > 0 ? stageUpTo : consistentAt;
        }
        long[] stagedEnd = {0};
        long walBytes = stageWal(archiveId, key, meta.timeline(), Lsn.parse(meta.startLsn()).value(), required,
                stageUpTo, dir.resolve("pg_wal"), restored[0], progress, stagedEnd);
        List<String> recovery = new ArrayList<>(List.of("restore_command = 'false'", "recovery_target_action = 'promote'"));
        if (stopAtTarget) {
            switch (target) {
                case RestoreTarget.Latest latest -> {}
                case RestoreTarget.AtTime time -> {
                    recovery.add("recovery_target_time = '" + DateTimeFormatter.ISO_INSTANT.format(time.time())
                            .replace('T', ' ').replace("Z", "+00") + "'");
                    recovery.add("recovery_target_inclusive = true");
                }
                case RestoreTarget.AtLsn lsn -> {
                    recovery.add("recovery_target_lsn = '" + lsn.lsn() + "'");
                    recovery.add("recovery_target_inclusive = true");
                }
            }
        }
        DataDirectoryWriter.configure(dir, recovery, true);
        progress.update("replaying WAL", restored[0], walBytes);
        return stagedEnd[0];
    }

    BaseBackupMeta readMeta(String archiveId, String backupId, DataKey key) {
        String metaKey = ArchiveLayout.baseMeta(archiveId, backupId);
        try {
            return MAPPER.readValue(sealer.open(key, metaKey, store.get(metaKey)), BaseBackupMeta.class);
        } catch (IOException e) {
            throw corrupt(metaKey, "it is not a valid backup description");
        }
    }

    /** The base backup's tar: its parts in order, each verified as it is fetched. */
    private InputStream partsStream(BaseBackupMeta meta, DataKey key) {
        Iterator<BaseBackupMeta.Part> parts = meta.parts().iterator();
        return new SequenceInputStream(new java.util.Enumeration<>() {
            @Override
            public boolean hasMoreElements() {
                return parts.hasNext();
            }

            @Override
            public InputStream nextElement() {
                if (!parts.hasNext()) {
                    throw new NoSuchElementException();
                }
                BaseBackupMeta.Part part = parts.next();
                byte[] plain = sealer.open(key, part.key(), store.get(part.key()));
                if (plain.length != part.size() || !BaseBackupTaker.sha256(plain).equals(part.sha256())) {
                    throw corrupt(part.key(), "its size or SHA-256 differs from the one recorded at backup time");
                }
                return new ByteArrayInputStream(plain);
            }
        });
    }

    /**
     * Writes every archived WAL byte of {@code timeline} from the segment holding {@code from} into segment files (the
     * rest of the last one stays zero: PostgreSQL reads that as the end of WAL). Returns the bytes staged.
     */
    private long stageWal(String archiveId, DataKey key, int timeline, long from, long requiredEnd, long upTo,
            Path walDir, long baseBytes, RestoreProgress progress, long[] stagedEnd) {
        long expected = ArchiveLayout.segmentStart(from);
        List<ArchiveLayout.WalChunk> chunks = new ArrayList<>();
        for (StoredObject object : store.list(ArchiveLayout.walPrefix(archiveId) + String.format("%08X/", timeline))) {
            ArchiveLayout.parseWalChunk(object.key()).ifPresent(chunks::add);
        }
        long staged = 0;
        try {
            Files.createDirectories(walDir);
            for (ArchiveLayout.WalChunk chunk : chunks) {
                long start = chunk.start().value();
                long end = chunk.end().value();
                if (Long.compareUnsigned(end, expected) <= 0) {
                    continue; // before the backup, or a chunk rewritten after a reconnect
                }
                if (upTo != 0 && Long.compareUnsigned(expected, upTo) >= 0) {
                    break; // a replay to "the end" stops where the first attempt's WAL ended
                }
                if (Long.compareUnsigned(start, expected) > 0) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the archive is missing WAL from "
                            + new Lsn(expected) + " to " + chunk.start() + " (before " + chunk.key()
                            + "); no restore past " + new Lsn(expected) + " is possible");
                }
                byte[] bytes = sealer.open(key, chunk.key(), store.get(chunk.key()));
                if (bytes.length != end - start) {
                    throw corrupt(chunk.key(), "it holds " + bytes.length + " bytes where its name says " + (end - start));
                }
                int skip = (int) (expected - start);
                int length = bytes.length - skip;
                if (upTo != 0 && Long.compareUnsigned(end, upTo) > 0) {
                    length -= (int) (end - upTo);
                    end = upTo;
                }
                Path segment = walDir.resolve(ArchiveLayout.walFileName(timeline, expected));
                if (expected == ArchiveLayout.segmentStart(expected)) {
                    Files.deleteIfExists(segment); // a new segment starts from zeros, never from leftover bytes
                }
                try (RandomAccessFile file = new RandomAccessFile(segment.toFile(), "rw")) {
                    file.setLength(ArchiveLayout.SEGMENT_SIZE);
                    file.seek(expected - ArchiveLayout.segmentStart(expected));
                    file.write(bytes, skip, length);
                }
                staged += length;
                expected = end;
                progress.update("staging WAL up to " + new Lsn(end), baseBytes, staged);
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot stage WAL into " + walDir + ": " + e.getMessage(), e);
        }
        stagedEnd[0] = expected;
        if (Long.compareUnsigned(expected, requiredEnd) < 0) {
            // the catalog recorded more as archived than the store holds: objects were lost or removed
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the archive holds WAL only up to " + new Lsn(expected)
                    + " but " + new Lsn(requiredEnd) + " was archived; objects after "
                    + ArchiveLayout.walPrefix(archiveId) + " are missing; restore stopped rather than produce a"
                    + " database with missing data");
        }
        return staged;
    }

    static PalisadeException corrupt(String objectKey, String why) {
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "archived object " + objectKey + " is corrupt: " + why
                + "; restore stopped rather than produce a database with missing data");
    }
}
