package io.palisade.backup.store;

import java.util.List;

/**
 * Where sealed backup objects live: immutable blobs named by keys such as
 * {@code archives/<archive-id>/wal/00000001/0000000001000000-0000000001002000} (rules: {@link ArchiveKeys}).
 *
 * <p>Implementations are thread-safe. Every failure is a {@link io.palisade.spi.PalisadeException}: a missing object is
 * {@code NOT_FOUND} naming the key, an invalid key {@code INVALID_REQUEST}, a storage failure {@code DRIVER_FAILURE}
 * naming the key and the store.
 */
public interface ArchiveStore extends AutoCloseable {
    /** Stores {@code bytes} under {@code key}, replacing any object there. Durable once this returns. */
    void put(String key, byte[] bytes);

    /** The bytes stored under {@code key}; {@code NOT_FOUND} naming the key if there is none. */
    byte[] get(String key);

    /** Every object whose key starts with {@code prefix} ({@code ""}: all), sorted by key. */
    List<StoredObject> list(String prefix);

    /** Deletes the object under {@code key}; nothing happens if there is none. */
    void delete(String key);

    /** Deletes every object whose key starts with {@code prefix}; nothing happens if there is none. */
    void deletePrefix(String prefix);

    /** Where the objects go, for logs and errors, e.g. {@code local /var/lib/palisade/backups}; never a secret. */
    String describe();

    /** Releases connections; the store is unusable afterwards. Idempotent. */
    @Override
    default void close() {}
}
