package io.palisade.pgwire;

import java.nio.charset.StandardCharsets;

/** Big-endian reads from byte arrays, and NUL-terminated strings. Stateless. */
final class Bytes {
    private Bytes() {}

    static int int16(byte[] b, int at) {
        return (short) (((b[at] & 0xff) << 8) | (b[at + 1] & 0xff));
    }

    static int int32(byte[] b, int at) {
        return ((b[at] & 0xff) << 24) | ((b[at + 1] & 0xff) << 16) | ((b[at + 2] & 0xff) << 8) | (b[at + 3] & 0xff);
    }

    static long int64(byte[] b, int at) {
        return ((long) int32(b, at) << 32) | (int32(b, at + 4) & 0xFFFF_FFFFL);
    }

    /** The index of the NUL ending the string at {@code at}, or -1 if none before {@code limit}. */
    static int nul(byte[] b, int at, int limit) {
        for (int i = at; i < limit; i++) {
            if (b[i] == 0) {
                return i;
            }
        }
        return -1;
    }

    static String utf8(byte[] b, int at, int length) {
        return new String(b, at, length, StandardCharsets.UTF_8);
    }
}
