package io.palisade.backup.store;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;

/**
 * An archived object that cannot be opened: damaged, truncated, renamed, or sealed under another key. Restores stop
 * here rather than go on with missing data; {@link #objectKey()} names the object.
 */
public final class ArchiveCorruptException extends PalisadeException {
    private final String objectKey;

    public ArchiveCorruptException(String objectKey, String reason) {
        this(objectKey, reason, null);
    }

    public ArchiveCorruptException(String objectKey, String reason, Throwable cause) {
        super(ErrorCode.INTERNAL, "archived object " + requireNonNull(objectKey, "objectKey is null")
                + " is corrupt or was not written by this archive (" + requireNonNull(reason, "reason is null") + ")",
                cause);
        this.objectKey = objectKey;
    }

    public String objectKey() {
        return objectKey;
    }
}
