package io.palisade.pgwire;

import java.io.IOException;
import java.util.List;

/**
 * Receives a base backup as the server streams it: one tar archive per tablespace ({@code base.tar} for the main data
 * directory, {@code <oid>.tar} for others), then the manifest. Called on the thread running
 * {@link ReplicationConnection#baseBackup}. If a method throws, the backup is aborted and the connection closed.
 */
public interface BaseBackupSink {
    /** The backup has started at {@code start}; {@code tablespaces} lists what will be sent (sizes with progress). */
    default void started(Lsn start, int timeline, List<BaseBackupResult.Tablespace> tablespaces) throws IOException {}

    /** A new tar archive begins; {@code tablespaceLocation} is empty for the main data directory. */
    void archiveStart(String name, String tablespaceLocation) throws IOException;

    /**
     * Bytes of the current archive or, after {@link #manifestStart()}, of the manifest. The array is reused after the
     * call returns: copy what you keep.
     */
    void data(byte[] buffer, int offset, int length) throws IOException;

    /** The archives are done; what follows is the backup manifest. */
    void manifestStart() throws IOException;

    /** Bytes of archives the server has sent so far. */
    default void progress(long bytesDone) throws IOException {}
}
