package io.palisade.backup;

import io.palisade.pgwire.BaseBackupOptions;
import io.palisade.pgwire.BaseBackupSink;
import io.palisade.pgwire.PgTarget;
import io.palisade.pgwire.ReplicationConnection;
import io.palisade.spi.AdminAccess;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * Copies a running server's current state into a new data directory: {@code BASE_BACKUP} with its WAL, streamed
 * straight into the directory as it arrives (no archive round trip), then checked against PostgreSQL's manifest. The
 * copy starts as a primary after crash recovery from the backup label. Not thread-safe; one copy per instance.
 */
final class ForkCopier {
    private final int maxRateKbps;

    ForkCopier(int maxRateKbps) {
        this.maxRateKbps = maxRateKbps;
    }

    void copy(AdminAccess source, Path dir, RestoreProgress progress) {
        progress.update("copying the source's current state", 0, 0);
        try (PipedInputStream tar = new PipedInputStream(1024 * 1024);
                PipedOutputStream sink = new PipedOutputStream(tar)) {
            ManifestBuffer manifest = new ManifestBuffer();
            CompletableFuture<Long> extraction = CompletableFuture.supplyAsync(() -> {
                try {
                    return DataDirectoryWriter.extract(tar, dir, bytes -> progress.update("copying", bytes, 0));
                } finally {
                    // a reader that gave up must not leave the writer blocked on a full pipe
                    closeQuietly(tar);
                }
            }, command -> Thread.ofVirtual().name("palisade-fork-extract").start(command));
            try (ReplicationConnection replication = ReplicationConnection.open(PgTarget.of(source), source.user(),
                    source.password(), Map.of("application_name", "palisade_fork"), Duration.ofSeconds(10))) {
                replication.baseBackup(BaseBackupTaker.options("palisade fork", true, maxRateKbps),
                        new BaseBackupSink() {
                            private boolean inManifest;

                            @Override
                            public void archiveStart(String name, String tablespaceLocation) {
                                if (tablespaceLocation != null && !tablespaceLocation.isEmpty()) {
                                    throw new PalisadeException(ErrorCode.CONFLICT,
                                            "the source has a tablespace; palisade copies only the main data directory");
                                }
                            }

                            @Override
                            public void manifestStart() {
                                inManifest = true;
                                closeQuietly(sink);
                            }

                            @Override
                            public void data(byte[] bytes, int offset, int length) {
                                if (inManifest) {
                                    manifest.append(bytes, offset, length);
                                    return;
                                }
                                try {
                                    sink.write(bytes, offset, length);
                                } catch (IOException e) {
                                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                                            "cannot write the copy: " + e.getMessage(), e);
                                }
                            }

                            @Override
                            public void progress(long bytes) {}
                        });
            } catch (RuntimeException e) {
                closeQuietly(sink);
                // when the extraction failed first, its error is the one that explains the failure
                if (extraction.isCompletedExceptionally()) {
                    extraction.get();
                }
                throw e;
            } finally {
                closeQuietly(sink);
            }
            long bytes = extraction.get();
            progress.update("verifying files against the backup manifest", bytes, 0);
            DataDirectoryWriter.verify(dir, manifest.toByteArray());
            DataDirectoryWriter.configure(dir, List.of(), false);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "fork copy failed: " + e.getMessage(), e);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof PalisadeException pe ? pe
                    : new PalisadeException(ErrorCode.DRIVER_FAILURE, "fork copy failed: " + e.getCause().getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while forking", e);
        }
    }

    private static void closeQuietly(java.io.Closeable stream) {
        try {
            stream.close();
        } catch (IOException ignored) {
            // the other side sees the end either way
        }
    }
}
