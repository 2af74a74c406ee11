package io.palisade.backup;

import static java.util.Objects.requireNonNull;

import io.palisade.backup.store.ArchiveStore;
import io.palisade.backup.store.DataKey;
import io.palisade.backup.store.Sealer;
import io.palisade.pgwire.Lsn;
import io.palisade.pgwire.PgConnection;
import io.palisade.pgwire.PgTarget;
import io.palisade.pgwire.Sql;
import io.palisade.pgwire.ReplicationConnection;
import io.palisade.pgwire.SlotInfo;
import io.palisade.pgwire.SystemIdentity;
import io.palisade.pgwire.WalMessage;
import io.palisade.pgwire.WalStream;
import io.palisade.spi.AdminAccess;
import io.palisade.store.BackupCatalog;
import io.palisade.store.Durability;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Streams one database's WAL into its archive with the replication protocol, through a physical slot, so that the
 * server keeps every byte until the archive has it. WAL is written in chunks that never cross a segment: within
 * {@code flushInterval} of arriving (async), or as soon as the server has nothing more to send (sync; commits wait for
 * our flush feedback through {@code synchronous_standby_names}). Reconnects with back-off; failures are recorded in
 * the catalog and counted. An async archiver connects {@code startDelay} after it was started (its slot keeps the WAL
 * meanwhile), so that the first client of a database that just started or woke does not share the server's CPU with
 * it; a sync one, or one switched to sync, connects at once. Runs on its own thread; {@link #close()} may be called
 * from any thread.
 */
final class WalArchiver implements Runnable, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(WalArchiver.class);
    /** The name the archiver connects with; {@code synchronous_standby_names} names it for sync durability. */
    static final String APPLICATION_NAME = "palisade_archiver";
    private static final Duration POLL = Duration.ofMillis(50);
    private static final Duration STATUS_INTERVAL = Duration.ofSeconds(1);
    private static final int MAX_CHUNK = 8 * 1024 * 1024;

    private final String databaseId;
    private final String archiveId;
    private final String slotName;
    private final DataKey key;
    private final Supplier<AdminAccess> access;
    private final ArchiveStore store;
    private final Sealer sealer;
    private final BackupCatalog catalog;
    private final Duration flushInterval;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Duration startDelay;
    private final CountDownLatch connectNow = new CountDownLatch(1);
    private final CompletableFuture<Boolean> slotHeld = new CompletableFuture<>();
    private volatile Durability durability;
    private volatile ReplicationConnection connection;

    // progress, read by metrics from other threads
    private volatile long archivedLsn;
    private volatile long serverLsn;
    private volatile Instant caughtUpAt;
    private volatile String lastError;
    private volatile long failures;
    private volatile Instant lastCatalogWrite = Instant.EPOCH;
    private volatile boolean stalled;
    private boolean resumed;
    private volatile String systemId;
    private volatile int timeline;
    private volatile Instant lastServerTime;
    private final CountDownLatch finished = new CountDownLatch(1);
    private final String knownSystemId;

    WalArchiver(String databaseId, String archiveId, String slotName, Long archivedLsn, DataKey key,
            String knownSystemId, Supplier<AdminAccess> access, ArchiveStore store, Sealer sealer, BackupCatalog catalog,
            Duration flushInterval, Durability durability, Duration startDelay) {
        this.knownSystemId = knownSystemId;
        this.databaseId = requireNonNull(databaseId, "databaseId is null");
        this.archiveId = requireNonNull(archiveId, "archiveId is null");
        this.slotName = requireNonNull(slotName, "slotName is null");
        this.archivedLsn = archivedLsn == null ? 0 : archivedLsn;
        this.key = requireNonNull(key, "key is null");
        this.access = requireNonNull(access, "access is null");
        this.store = requireNonNull(store, "store is null");
        this.sealer = requireNonNull(sealer, "sealer is null");
        this.catalog = requireNonNull(catalog, "catalog is null");
        this.flushInterval = requireNonNull(flushInterval, "flushInterval is null");
        this.durability = requireNonNull(durability, "durability is null");
        this.startDelay = requireNonNull(startDelay, "startDelay is null");
    }

    String archiveId() {
        return archiveId;
    }

    void setDurability(Durability durability) {
        this.durability = requireNonNull(durability, "durability is null");
        if (durability == Durability.SYNC) {
            connectNow(); // commits are about to wait for the archive
        }
    }

    /** Connects now, without waiting out the start delay (e.g. a base backup needs the slot). */
    void connectNow() {
        connectNow.countDown();
    }

    /**
     * Waits up to {@code timeout} until the archiver holds its slot and knows where it streams from: WAL written from
     * then on reaches the archive (a base backup started earlier could begin in a segment the archive never gets).
     * True once it does; false while it does not yet, or when it ended (closed or stalled) before it did.
     */
    boolean awaitSlot(Duration timeout) throws InterruptedException {
        try {
            return slotHeld.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            return false;
        } catch (ExecutionException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Whether the archiver has ended (closed, or stalled for good). */
    boolean ended() {
        return finished.getCount() == 0;
    }

    /** Everything before this position is durable in the archive (0 before the first chunk). */
    long archivedLsn() {
        return archivedLsn;
    }

    /** Bytes the server has written that the archive does not have yet, as of the last message. */
    long lagBytes() {
        return Math.max(0, serverLsn - archivedLsn);
    }

    /** Seconds since the archive last held everything the server had written (0 when caught up now). */
    double lagSeconds() {
        Instant at = caughtUpAt;
        if (at == null) {
            return Double.NaN;
        }
        return lagBytes() == 0 ? 0 : Duration.between(at, Instant.now()).toMillis() / 1000.0;
    }

    Optional<Instant> caughtUpAt() {
        return Optional.ofNullable(caughtUpAt);
    }

    Optional<String> lastError() {
        return Optional.ofNullable(lastError);
    }

    long failures() {
        return failures;
    }

    /** Whether the archiver has stopped for good (a gap it cannot repair; a new archive is needed). */
    boolean stalled() {
        return stalled;
    }

    @Override
    public void run() {
        try {
            boolean early = durability == Durability.SYNC || connectNow.await(startDelay.toMillis(), TimeUnit.MILLISECONDS);
            log.debug("the archiver of {} starts {}", databaseId, early ? "at once" : "after its start delay");
            loop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            fail(e.getMessage());
            stalled = true;
            log.error("archiving of {} stopped: {}", databaseId, e.getMessage());
        } finally {
            slotHeld.complete(false); // a waiter learns it never will
            finished.countDown();
        }
    }

    /**
     * The catalog may be behind the store (its writes are throttled, and a crash loses the last one): continue after
     * the newest chunk actually written, never before it, so the server is not asked for WAL it may have recycled.
     */
    private void resumeFromStore() {
        long newest = archivedLsn;
        for (var object : store.list(ArchiveLayout.walPrefix(archiveId))) {
            var chunk = ArchiveLayout.parseWalChunk(object.key());
            if (chunk.isPresent() && Long.compareUnsigned(chunk.get().end().value(), newest) > 0) {
                newest = chunk.get().end().value();
            }
        }
        archivedLsn = newest;
    }

    private void loop() {
        Duration backoff = Duration.ofMillis(500);
        while (!closed.get()) {
            try {
                streamOnce();
                backoff = Duration.ofMillis(500);
            } catch (ArchiveGapException e) {
                throw e;
            } catch (RuntimeException e) {
                if (closed.get()) {
                    break;
                }
                fail(e.getMessage());
                log.warn("archiving of {} failed, retrying in {} ms: {}", databaseId, backoff.toMillis(), e.getMessage());
                for (long waited = 0; waited < backoff.toMillis() && !closed.get(); waited += 100) {
                    sleep(Duration.ofMillis(100));
                }
                backoff = backoff.multipliedBy(2).compareTo(Duration.ofSeconds(10)) > 0 ? Duration.ofSeconds(10)
                        : backoff.multipliedBy(2);
            }
        }
    }

    private void fail(String message) {
        lastError = message;
        failures++;
        try {
            catalog.archiveError(archiveId, message, Instant.now());
        } catch (RuntimeException e) {
            log.warn("cannot record the archiving error of {}: {}", databaseId, e.getMessage());
        }
    }

    private void streamOnce() {
        if (!resumed) {
            resumeFromStore();
            resumed = true;
        }
        AdminAccess admin = access.get();
        try (ReplicationConnection replication = ReplicationConnection.open(PgTarget.of(admin), admin.user(),
                admin.password(), Map.of("application_name", APPLICATION_NAME), Duration.ofSeconds(10))) {
            connection = replication;
            if (closed.get()) {
                return;
            }
            SystemIdentity system = replication.identifySystem();
            if (knownSystemId != null && !knownSystemId.equals(system.systemId())) {
                throw new ArchiveGapException("the server of " + databaseId + " is another cluster (system "
                        + system.systemId() + ", the archive holds " + knownSystemId + "); a new archive is needed");
            }
            Optional<SlotInfo> slot = replication.readSlot(slotName);
            if (slot.isPresent() && slot.get().restartLsn().isEmpty() && archivedLsn != 0) {
                throw new ArchiveGapException("the replication slot of " + databaseId
                        + " was invalidated (its WAL exceeded max_slot_wal_keep_size while the archive was behind);"
                        + " WAL after " + new Lsn(archivedLsn) + " is gone and a new archive is needed");
            }
            long start;
            if (archivedLsn == 0) {
                Lsn reserved = slot.flatMap(SlotInfo::restartLsn)
                        .orElseGet(() -> replication.createPhysicalSlot(slotName, true));
                dropOtherSlots(admin);
                // start at the segment's beginning: restore needs whole segments with their headers
                start = ArchiveLayout.segmentStart(reserved.value());
            } else {
                if (slot.isEmpty()) {
                    Lsn reserved = replication.createPhysicalSlot(slotName, true);
                    if (Long.compareUnsigned(reserved.value(), archivedLsn) > 0) {
                        throw new ArchiveGapException("the replication slot of " + databaseId + " was lost and WAL from "
                                + new Lsn(archivedLsn) + " to " + reserved + " is gone; take a new base backup");
                    }
                }
                start = archivedLsn;
            }
            slotHeld.complete(true);
            int timeline = system.timeline();
            this.systemId = system.systemId();
            this.timeline = timeline;
            log.info("archiving {} from {} on timeline {} (slot {})", databaseId, new Lsn(start), timeline, slotName);
            stream(replication, system, timeline, start);
        } finally {
            connection = null;
        }
    }

    /**
     * A new lineage starts: slots of earlier lineages of this server (invalidated, or kept by nobody) would hold WAL
     * for no one, so they go. Only palisade's own slots; tenants cannot create any (they lack REPLICATION).
     */
    private void dropOtherSlots(AdminAccess admin) {
        try (PgConnection sql = PgConnection.open(PgTarget.of(admin), admin.user(), admin.password(),
                Map.of("application_name", "palisade_archiver", "database", "postgres"), Duration.ofSeconds(10))) {
            sql.simpleQuery("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                    + " WHERE (slot_name LIKE 'pa\\_%' OR slot_name = 'palisade_archive') AND slot_name <> "
                    + Sql.quoteLiteral(slotName) + " AND NOT active");
        }
    }

    private void stream(ReplicationConnection replication, SystemIdentity system, int timeline, long start) {
        WalStream stream = replication.startPhysical(Optional.of(slotName), new Lsn(start), timeline);
        byte[] buffer = new byte[64 * 1024];
        int buffered = 0;
        long chunkStart = start;
        long next = start;
        long firstBufferedAt = 0;
        long lastStatus = 0;
        while (!closed.get()) {
            Durability mode = durability;
            Duration wait = buffered > 0 && mode == Durability.SYNC ? Duration.ZERO : POLL;
            Optional<WalMessage> message = stream.next(wait);
            if (message.isPresent()) {
                switch (message.get()) {
                    case WalMessage.XLogData data -> {
                        long walStart = data.walStart().value();
                        if (walStart != next) {
                            if (buffered == 0 && next == start) {
                                chunkStart = next = walStart;
                            } else {
                                throw new IllegalStateException("the server sent WAL from " + data.walStart()
                                        + " where " + new Lsn(next) + " was expected");
                            }
                        }
                        serverLsn = Math.max(serverLsn, data.serverWalEnd().value());
                        lastServerTime = data.serverTime();
                        java.nio.ByteBuffer view = data.data();
                        byte[] bytes = new byte[view.remaining()];
                        view.get(bytes);
                        int offset = 0;
                        while (offset < bytes.length) {
                            long segmentEnd = ArchiveLayout.segmentStart(next) + ArchiveLayout.SEGMENT_SIZE;
                            int take = (int) Math.min(bytes.length - offset, segmentEnd - next);
                            if (buffered + take > buffer.length) {
                                buffer = Arrays.copyOf(buffer, Math.max(buffer.length * 2, buffered + take));
                            }
                            System.arraycopy(bytes, offset, buffer, buffered, take);
                            if (buffered == 0) {
                                firstBufferedAt = System.nanoTime();
                            }
                            buffered += take;
                            offset += take;
                            next += take;
                            if (next == segmentEnd || buffered >= MAX_CHUNK) {
                                flush(timeline, system, chunkStart, buffer, buffered);
                                chunkStart = next;
                                buffered = 0;
                                stream.sendStatus(new Lsn(next), new Lsn(next), new Lsn(next), false);
                            }
                        }
                    }
                    case WalMessage.Keepalive keepalive -> {
                        serverLsn = Math.max(serverLsn, keepalive.serverWalEnd().value());
                        lastServerTime = keepalive.serverTime();
                        if (buffered == 0 && Long.compareUnsigned(archivedLsn, keepalive.serverWalEnd().value()) >= 0) {
                            // the server's clock: everything it had written when it sent this is archived
                            caughtUpAt = keepalive.serverTime();
                            recordProgress(system, timeline, false);
                        }
                        if (keepalive.replyRequested()) {
                            stream.sendStatus(new Lsn(archivedLsn), new Lsn(archivedLsn), new Lsn(archivedLsn), false);
                        }
                    }
                    case WalMessage.EndOfTimeline end -> {
                        if (buffered > 0) {
                            flush(timeline, system, chunkStart, buffer, buffered);
                        }
                        log.info("archiving {}: timeline {} ended, continuing on {}", databaseId, timeline,
                                end.nextTimeline());
                        return;
                    }
                }
            }
            boolean due = buffered > 0 && (mode == Durability.SYNC && message.isEmpty()
                    || System.nanoTime() - firstBufferedAt >= flushInterval.toNanos());
            if (due) {
                flush(timeline, system, chunkStart, buffer, buffered);
                chunkStart = next;
                buffered = 0;
                stream.sendStatus(new Lsn(next), new Lsn(next), new Lsn(next), false);
                lastStatus = System.nanoTime();
            }
            if (System.nanoTime() - lastStatus >= STATUS_INTERVAL.toNanos()) {
                // asks the server for a keepalive: its answer says how far it has written, so we know we are caught up
                stream.sendStatus(new Lsn(archivedLsn), new Lsn(archivedLsn), new Lsn(archivedLsn), true);
                lastStatus = System.nanoTime();
            }
        }
        if (buffered > 0) {
            flush(timeline, system, chunkStart, buffer, buffered);
        }
    }

    private void flush(int timeline, SystemIdentity system, long chunkStart, byte[] buffer, int length) {
        long end = chunkStart + length;
        String objectKey = ArchiveLayout.walChunk(archiveId, timeline, new Lsn(chunkStart), new Lsn(end));
        store.put(objectKey, sealer.seal(key, objectKey, Arrays.copyOf(buffer, length)));
        archivedLsn = end;
        lastError = null; // the archive takes writes again
        if (Long.compareUnsigned(end, serverLsn) >= 0 && lastServerTime != null) {
            caughtUpAt = lastServerTime;
        }
        recordProgress(system, timeline, true);
    }

    private void recordProgress(SystemIdentity system, int timeline, boolean wrote) {
        Instant now = Instant.now();
        // the catalog is for restores and status; at most a few writes a second per database
        if (Duration.between(lastCatalogWrite, now).toMillis() < (wrote ? 200 : 1000)) {
            return;
        }
        lastCatalogWrite = now;
        catalog.archiveProgress(archiveId, system.systemId(), timeline, archivedLsn, caughtUpAt);
    }

    /** Writes the latest progress to the catalog now (before a restore reads it). */
    void syncCatalog() {
        if (archivedLsn != 0 && systemId != null) {
            catalog.archiveProgress(archiveId, systemId, timeline, archivedLsn, caughtUpAt);
        }
    }

    /**
     * Stops streaming and waits (bounded) until the archiver has written what it received and exited: the loop sees
     * the flag within one poll and flushes its buffer; only if it does not stop by itself is its connection closed.
     */
    @Override
    public void close() {
        closed.set(true);
        connectNow.countDown();
        try {
            if (!finished.await(3, TimeUnit.SECONDS)) {
                ReplicationConnection open = connection;
                if (open != null) {
                    try {
                        open.close();
                    } catch (RuntimeException e) {
                        log.debug("closing the replication connection of {}: {}", databaseId, e.getMessage());
                    }
                }
                if (!finished.await(30, TimeUnit.SECONDS)) {
                    log.warn("the archiver of {} did not stop within 30 s", databaseId);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        syncCatalog();
    }

    private static void sleep(Duration duration) {
        try {
            Thread.sleep(duration);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The archive cannot be continued without losing WAL. */
    static final class ArchiveGapException extends RuntimeException {
        ArchiveGapException(String message) {
            super(message);
        }
    }
}
