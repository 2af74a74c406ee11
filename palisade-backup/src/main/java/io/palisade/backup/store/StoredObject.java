package io.palisade.backup.store;

import static java.util.Objects.requireNonNull;

import java.time.Instant;

/** One object in an {@link ArchiveStore}: its key (relative to the store), size in bytes and last write time. */
public record StoredObject(String key, long size, Instant lastModified) {
    public StoredObject {
        requireNonNull(key, "key is null");
        requireNonNull(lastModified, "lastModified is null");
        if (size < 0) {
            throw new IllegalArgumentException("size is negative: " + size);
        }
    }
}
