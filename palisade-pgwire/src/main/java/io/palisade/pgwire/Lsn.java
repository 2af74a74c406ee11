package io.palisade.pgwire;

import java.util.Locale;

/**
 * A PostgreSQL write-ahead log position (an {@code XLogRecPtr}): a byte offset into the WAL, written {@code 16/B374D848}
 * (high and low 32 bits in hexadecimal). Compared as an unsigned number. Immutable.
 */
public record Lsn(long value) implements Comparable<Lsn> {
    /** {@code 0/0}, PostgreSQL's {@code InvalidXLogRecPtr}. */
    public static final Lsn INVALID = new Lsn(0);
    /** The default WAL segment size, 16 MiB ({@code initdb --wal-segsize} can change it). */
    public static final long DEFAULT_SEGMENT_SIZE = 16L * 1024 * 1024;

    /** Parses {@code X/Y} with one to eight hexadecimal digits on each side. */
    public static Lsn parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException("LSN is null; expected the form 16/B374D848");
        }
        int slash = text.indexOf('/');
        if (slash < 1 || slash > 8 || text.length() - slash - 1 < 1 || text.length() - slash - 1 > 8
                || !isHex(text, 0, slash) || !isHex(text, slash + 1, text.length())) {
            throw new IllegalArgumentException("not an LSN: '" + text + "'; expected the form 16/B374D848");
        }
        try {
            long high = Long.parseLong(text, 0, slash, 16);
            long low = Long.parseLong(text, slash + 1, text.length(), 16);
            return new Lsn((high << 32) | low);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not an LSN: '" + text + "'; expected the form 16/B374D848", e);
        }
    }

    private static boolean isHex(String text, int from, int to) {
        for (int i = from; i < to; i++) {
            if (Character.digit(text.charAt(i), 16) < 0) {
                return false;
            }
        }
        return true;
    }

    public boolean isValid() {
        return value != 0;
    }

    public Lsn plus(long bytes) {
        return new Lsn(value + bytes);
    }

    /** Bytes from {@code earlier} to this position (negative if {@code earlier} is later). */
    public long minus(Lsn earlier) {
        return value - earlier.value;
    }

    /** The start of the WAL segment holding this position. */
    public Lsn segmentStart(long segmentSize) {
        checkSegmentSize(segmentSize);
        return new Lsn(value & -segmentSize);
    }

    /** The number of the WAL segment holding this position ({@code XLogSegNo}). */
    public long segmentNumber(long segmentSize) {
        checkSegmentSize(segmentSize);
        return Long.divideUnsigned(value, segmentSize);
    }

    /** The offset of this position inside its WAL segment. */
    public long segmentOffset(long segmentSize) {
        checkSegmentSize(segmentSize);
        return value & (segmentSize - 1);
    }

    /** The WAL file name of this position's segment, e.g. {@code 000000010000001600000000}. */
    public String segmentFileName(int timeline, long segmentSize) {
        return walFileName(timeline, segmentNumber(segmentSize), segmentSize);
    }

    /** The WAL file name ({@code TTTTTTTTXXXXXXXXYYYYYYYY}) of segment {@code segNo} with 16 MiB segments. */
    public static String walFileName(int timeline, long segNo) {
        return walFileName(timeline, segNo, DEFAULT_SEGMENT_SIZE);
    }

    /** The WAL file name ({@code TTTTTTTTXXXXXXXXYYYYYYYY}) of segment {@code segNo}. */
    public static String walFileName(int timeline, long segNo, long segmentSize) {
        checkSegmentSize(segmentSize);
        if (timeline < 1) {
            throw new IllegalArgumentException("timeline must be at least 1: " + timeline);
        }
        long segmentsPerId = 0x1_0000_0000L / segmentSize;
        return String.format(Locale.ROOT, "%08X%08X%08X", timeline, segNo / segmentsPerId, segNo % segmentsPerId);
    }

    /** The start position of a WAL file, from its name (the timeline is the first eight digits). */
    public static Lsn ofWalFileName(String fileName, long segmentSize) {
        checkSegmentSize(segmentSize);
        if (fileName.length() != 24 || !fileName.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
            throw new IllegalArgumentException("not a WAL file name: '" + fileName + "'; expected 24 hex digits");
        }
        long id = Long.parseLong(fileName, 8, 16, 16);
        long seg = Long.parseLong(fileName, 16, 24, 16);
        return new Lsn((id * (0x1_0000_0000L / segmentSize) + seg) * segmentSize);
    }

    private static void checkSegmentSize(long segmentSize) {
        if (segmentSize < 1024 * 1024 || segmentSize > 1024L * 1024 * 1024 || Long.bitCount(segmentSize) != 1) {
            throw new IllegalArgumentException("WAL segment size must be a power of two from 1 MiB to 1 GiB: "
                    + segmentSize);
        }
    }

    @Override
    public int compareTo(Lsn other) {
        return Long.compareUnsigned(value, other.value);
    }

    public boolean isAfter(Lsn other) {
        return compareTo(other) > 0;
    }

    public boolean isBefore(Lsn other) {
        return compareTo(other) < 0;
    }

    public static Lsn max(Lsn a, Lsn b) {
        return a.compareTo(b) >= 0 ? a : b;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%X/%X", value >>> 32, value & 0xFFFF_FFFFL);
    }
}
