package io.palisade.backup;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.ByteArrayOutputStream;

/**
 * PostgreSQL's backup manifest as a base backup streams it, bounded: it grows with the number of files, and past
 * {@link #MAX_BYTES} the database has too many of them to be backed up here. Not thread-safe.
 */
final class ManifestBuffer {
    static final long MAX_BYTES = 64L * 1024 * 1024;

    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    void append(byte[] buffer, int offset, int length) {
        if (bytes.size() + (long) length > MAX_BYTES) {
            throw new PalisadeException(ErrorCode.CONFLICT, "the base backup manifest exceeds "
                    + MAX_BYTES / (1024 * 1024) + " MiB: the database has too many files (tables, indexes) to be backed"
                    + " up by this server; drop unused relations");
        }
        bytes.write(buffer, offset, length);
    }

    byte[] toByteArray() {
        return bytes.toByteArray();
    }
}
