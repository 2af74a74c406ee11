package io.palisade.backup;

import io.palisade.pgwire.Lsn;
import java.util.HexFormat;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where things live in the object store, one prefix per archive (WAL lineage):
 * <pre>
 * archives/&lt;archive&gt;/wal/&lt;timeline 8 hex&gt;/&lt;start 16 hex&gt;-&lt;end 16 hex&gt;   WAL bytes [start, end), never across a segment
 * archives/&lt;archive&gt;/base/&lt;backup&gt;/part-00000 …                      the base backup's tar stream, in parts
 * archives/&lt;archive&gt;/base/&lt;backup&gt;/manifest                          PostgreSQL's backup_manifest
 * archives/&lt;archive&gt;/base/&lt;backup&gt;/meta                              our description: LSNs, parts and their SHA-256
 * </pre>
 * Hex numbers are zero-padded so that key order is LSN order. Stateless.
 */
public final class ArchiveLayout {
    /** PostgreSQL's default WAL segment size, which every palisade server uses. */
    public static final long SEGMENT_SIZE = 16L * 1024 * 1024;

    private static final Pattern WAL_CHUNK = Pattern.compile(".*/wal/([0-9A-F]{8})/([0-9A-F]{16})-([0-9A-F]{16})$");

    private ArchiveLayout() {}

    public static String archivePrefix(String archiveId) {
        return "archives/" + archiveId + "/";
    }

    public static String walPrefix(String archiveId) {
        return archivePrefix(archiveId) + "wal/";
    }

    public static String walChunk(String archiveId, int timeline, Lsn start, Lsn end) {
        return walPrefix(archiveId) + hex8(timeline) + "/" + hex16(start.value()) + "-" + hex16(end.value());
    }

    public static String basePrefix(String archiveId, String backupId) {
        return archivePrefix(archiveId) + "base/" + backupId + "/";
    }

    public static String basePart(String archiveId, String backupId, int part) {
        return basePrefix(archiveId, backupId) + String.format("part-%05d", part);
    }

    public static String baseManifest(String archiveId, String backupId) {
        return basePrefix(archiveId, backupId) + "manifest";
    }

    public static String baseMeta(String archiveId, String backupId) {
        return basePrefix(archiveId, backupId) + "meta";
    }

    /** A WAL chunk's place, parsed from its key. */
    public record WalChunk(String key, int timeline, Lsn start, Lsn end) {}

    public static Optional<WalChunk> parseWalChunk(String key) {
        Matcher m = WAL_CHUNK.matcher(key);
        if (!m.matches()) {
            return Optional.empty();
        }
        return Optional.of(new WalChunk(key, Integer.parseUnsignedInt(m.group(1), 16),
                new Lsn(Long.parseUnsignedLong(m.group(2), 16)), new Lsn(Long.parseUnsignedLong(m.group(3), 16))));
    }

    public static long segmentStart(long lsn) {
        return lsn - Long.remainderUnsigned(lsn, SEGMENT_SIZE);
    }

    /** PostgreSQL's WAL file name of the segment holding {@code lsn}: timeline, log id, segment within the log id. */
    public static String walFileName(int timeline, long lsn) {
        long segNo = Long.divideUnsigned(lsn, SEGMENT_SIZE);
        long perId = 0x1_0000_0000L / SEGMENT_SIZE;
        return hex8(timeline) + hex8((int) (segNo / perId)) + hex8((int) (segNo % perId));
    }

    private static String hex8(int value) {
        return HexFormat.of().withUpperCase().toHexDigits(value);
    }

    private static String hex16(long value) {
        return HexFormat.of().withUpperCase().toHexDigits(value);
    }
}
