package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.AdminAccess;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.regex.Pattern;

/**
 * A physical replication connection ({@code replication=true}): IDENTIFY_SYSTEM, physical slots, WAL streaming and
 * BASE_BACKUP, the way {@code pg_receivewal} and {@code pg_basebackup} use the protocol (PostgreSQL 15+ syntax). The
 * role needs the REPLICATION attribute (or superuser) and a {@code replication} line in {@code pg_hba.conf}.
 *
 * <p>Thread-confined: one thread uses it (and its {@link WalStream}) at a time; {@link #close()} may be called from any
 * thread to abort a blocked call. A server error ({@link PgServerException}) leaves the connection usable; an I/O
 * failure, a read timeout or a failing {@link BaseBackupSink} closes it.
 */
public final class ReplicationConnection extends WireConnection {
    private static final Pattern SLOT_NAME = Pattern.compile("[a-z0-9_]{1,63}");

    private WalStream stream;

    private ReplicationConnection(WireSession session) {
        super(session);
    }

    public static ReplicationConnection open(PgTarget target, String user, Optional<String> password,
            Duration connectTimeout) {
        return open(target, user, password, Map.of(), connectTimeout);
    }

    /**
     * Connects with extra startup parameters. Set {@code application_name} to name this receiver in
     * {@code pg_stat_replication}; it is also the name {@code synchronous_standby_names} must list for commits to wait
     * for the position we report as flushed.
     */
    public static ReplicationConnection open(PgTarget target, String user, Optional<String> password,
            Map<String, String> startupParameters, Duration connectTimeout) {
        requireNonNull(startupParameters, "startupParameters is null");
        Map<String, String> startup = new LinkedHashMap<>(startupParameters);
        startup.put("replication", "true");
        return new ReplicationConnection(WireSession.open(target, user, password, startup, connectTimeout));
    }

    /** Connects as palisade's management user of an instance. */
    public static ReplicationConnection open(AdminAccess access, Duration connectTimeout) {
        return open(access, Map.of(), connectTimeout);
    }

    /** Connects as palisade's management user of an instance, with extra startup parameters. */
    public static ReplicationConnection open(AdminAccess access, Map<String, String> startupParameters,
            Duration connectTimeout) {
        requireNonNull(access, "access is null");
        return open(PgTarget.of(access), access.user(), access.password(), startupParameters, connectTimeout);
    }

    public SystemIdentity identifySystem() {
        Row row = single(command("IDENTIFY_SYSTEM"), "IDENTIFY_SYSTEM");
        return new SystemIdentity(row.get("systemid"), (int) row.getLong("timeline"), row.getLsn("xlogpos"));
    }

    /**
     * Creates a persistent physical slot. With {@code reserveWal} the slot keeps WAL from now on and this returns the
     * position it keeps from (its restart LSN); without, the slot keeps nothing until a stream starts, and this returns
     * the {@code consistent_point} the server reports ({@code 0/0} for physical slots).
     */
    public Lsn createPhysicalSlot(String name, boolean reserveWal) {
        checkSlotName(name);
        String sql = "CREATE_REPLICATION_SLOT " + name + " PHYSICAL" + (reserveWal ? " (RESERVE_WAL true)" : "");
        Lsn reported = single(command(sql), "CREATE_REPLICATION_SLOT").getLsn("consistent_point");
        if (reported.isValid() || !reserveWal) {
            return reported;
        }
        return readSlot(name).flatMap(SlotInfo::restartLsn).orElse(reported);
    }

    /** Drops a slot; with {@code wait}, waits for a stream still using it to end instead of failing (SQLSTATE 55006). */
    public void dropSlot(String name, boolean wait) {
        checkSlotName(name);
        command("DROP_REPLICATION_SLOT " + name + (wait ? " WAIT" : ""));
    }

    /** The slot's type and restart position, or empty if there is no such slot (READ_REPLICATION_SLOT, PG 15+). */
    public Optional<SlotInfo> readSlot(String name) {
        checkSlotName(name);
        Row row = single(command("READ_REPLICATION_SLOT " + name), "READ_REPLICATION_SLOT");
        String type = row.get("slot_type");
        if (type == null) {
            return Optional.empty();
        }
        String restart = row.get("restart_lsn");
        String timeline = row.get("restart_tli");
        return Optional.of(new SlotInfo(type, Optional.ofNullable(restart).map(Lsn::parse),
                timeline == null ? OptionalInt.empty() : OptionalInt.of(Integer.parseInt(timeline))));
    }

    /** The history file of {@code timeline} (2 or later), which a restore needs to follow timeline switches. */
    public TimelineHistory timelineHistory(int timeline) {
        if (timeline < 2) {
            throw new IllegalArgumentException("timeline 1 has no history file; asked for " + timeline);
        }
        Row row = single(command("TIMELINE_HISTORY " + timeline), "TIMELINE_HISTORY");
        return new TimelineHistory(row.get("filename"), row.get("content").getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Starts streaming WAL of {@code timeline} from {@code start} (usually a segment start), through {@code slot} if
     * given (the slot then keeps WAL from the position we report as flushed).
     *
     * <p>Some refusals (a start ahead of the server's WAL, WAL already removed) arrive after the stream has started:
     * the first {@link WalStream#next} throws them.
     *
     * @throws PgServerException if the server refuses at once, e.g. an unknown slot or timeline
     */
    public WalStream startPhysical(Optional<String> slot, Lsn start, int timeline) {
        requireNonNull(slot, "slot is null");
        requireNonNull(start, "start is null");
        slot.ifPresent(ReplicationConnection::checkSlotName);
        if (timeline < 1) {
            throw new IllegalArgumentException("timeline must be at least 1: " + timeline);
        }
        checkIdle();
        String sql = "START_REPLICATION " + slot.map(name -> "SLOT " + name + " ").orElse("") + "PHYSICAL " + start
                + " TIMELINE " + timeline;
        session.sendQuery(sql);
        String what = "starting replication at " + start + " on timeline " + timeline;
        while (true) {
            session.receive(what);
            switch (session.stream().type()) {
                case 'W' -> {
                    stream = new WalStream(this, session, start, timeline, Optional.empty());
                    return stream;
                }
                case 'T', 'C' -> {
                    // a historic timeline with nothing left to send: the server skips COPY and names the next one
                    Optional<WalMessage.EndOfTimeline> end = WalStream.endOf(session.readResults(what, true));
                    if (end.isEmpty()) {
                        throw session.protocolViolation("START_REPLICATION ended without streaming or naming a next"
                                + " timeline");
                    }
                    stream = new WalStream(this, session, start, timeline, end);
                    return stream;
                }
                case 'E' -> {
                    PgServerException error = session.error();
                    session.readResults(what);
                    throw error;
                }
                case 'N' -> session.notice();
                case 'S' -> session.parameterStatus();
                default -> throw session.protocolViolation("unexpected message '" + session.stream().type()
                        + "' in answer to START_REPLICATION");
            }
        }
    }

    /**
     * Takes a base backup, streaming the tar archives and the manifest to {@code sink}. Blocks until the server has
     * sent everything; the read timeout applies to each wait (a SPREAD checkpoint may need a longer one).
     */
    public BaseBackupResult baseBackup(BaseBackupOptions options, BaseBackupSink sink) {
        requireNonNull(options, "options is null");
        requireNonNull(sink, "sink is null");
        checkIdle();
        return BaseBackupProtocol.run(session, options, sink);
    }

    /** Runs any other replication command (e.g. {@code SHOW wal_segment_size}) and returns the last result's rows. */
    public List<Row> command(String sql) {
        checkIdle();
        List<WireSession.Result> results = session.simpleQuery(sql);
        return results.isEmpty() ? List.of() : results.getLast().rows();
    }

    /** The server's WAL segment size in bytes ({@code SHOW wal_segment_size}). */
    public long walSegmentSize() {
        String text = single(command("SHOW wal_segment_size"), "SHOW wal_segment_size").get(0);
        return parseSize(text);
    }

    static long parseSize(String text) {
        String value = text.trim();
        long unit = 1;
        if (value.endsWith("kB")) {
            unit = 1024;
        } else if (value.endsWith("MB")) {
            unit = 1024 * 1024;
        } else if (value.endsWith("GB")) {
            unit = 1024L * 1024 * 1024;
        }
        String digits = unit == 1 ? value.replace("B", "") : value.substring(0, value.length() - 2);
        return Long.parseLong(digits.trim()) * unit;
    }

    private Row single(List<Row> rows, String command) {
        if (rows.size() != 1) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, command + " on " + session.target() + " returned "
                    + rows.size() + " rows; expected one");
        }
        return rows.getFirst();
    }

    private static void checkSlotName(String name) {
        requireNonNull(name, "slot name is null");
        if (!SLOT_NAME.matcher(name).matches()) {
            throw PalisadeException.invalid("replication slot name '" + name + "' is invalid: use 1 to 63 lower-case"
                    + " letters, digits and underscores");
        }
    }

    private void checkIdle() {
        if (stream != null && stream.isActive()) {
            throw new IllegalStateException("a WAL stream is active on this connection; stop it first");
        }
    }

    void streamEnded(WalStream ended) {
        if (stream == ended) {
            stream = null;
        }
    }

    /**
     * Closes the connection at once, without a goodbye: a read or copy blocked on it in another thread fails at once
     * (e.g. a base backup from a server that was suspended and will not answer). Idempotent; safe from any thread.
     */
    public void abort() {
        session.close();
    }

    /** Closes the connection (ending any stream). Idempotent; safe from any thread. */
    @Override
    public void close() {
        if (stream != null && stream.isActive()) {
            session.close();
        } else {
            session.terminate();
        }
    }
}
