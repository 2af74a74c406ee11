package io.palisade.pgwire;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * Runs BASE_BACKUP on a replication session. The server answers with a result set (start position and timeline), one
 * listing the tablespaces, a single CopyOut stream whose CopyData payloads begin with a type byte ('n' new archive:
 * name and tablespace location; 'd' archive or manifest bytes; 'p' progress: bytes done; 'm' manifest follows), and a
 * final result set (end position and timeline). Stateless.
 */
final class BaseBackupProtocol {
    private BaseBackupProtocol() {}

    static BaseBackupResult run(WireSession session, BaseBackupOptions options, BaseBackupSink sink) {
        String what = "taking base backup '" + options.label() + "'";
        session.sendQuery(options.command());
        List<WireSession.Result> before = new ArrayList<>();
        List<WireSession.Result> after = new ArrayList<>();
        List<String> columns = List.of();
        List<Row> rows = new ArrayList<>();
        boolean inCopy = false;
        boolean copied = false;
        PgServerException error = null;
        while (true) {
            session.receive(what);
            PgStream stream = session.stream();
            switch (stream.type()) {
                case 'T' -> {
                    columns = RowParser.columns(session);
                    rows = new ArrayList<>();
                }
                case 'D' -> rows.add(RowParser.row(session, columns));
                case 'C' -> {
                    if (!columns.isEmpty()) {
                        (copied ? after : before).add(new WireSession.Result(columns, List.copyOf(rows),
                                session.commandTag()));
                    }
                    columns = List.of();
                    rows = new ArrayList<>();
                }
                case 'H' -> {
                    if (!columns.isEmpty()) {
                        before.add(new WireSession.Result(columns, List.copyOf(rows), "SELECT"));
                        columns = List.of();
                        rows = new ArrayList<>();
                    }
                    inCopy = true;
                    if (before.isEmpty()) {
                        throw session.protocolViolation("BASE_BACKUP sent no start position before its data");
                    }
                    Row start = first(session, before.getFirst(), "start position");
                    List<BaseBackupResult.Tablespace> tablespaces = before.size() > 1
                            ? tablespaces(before.get(1)) : List.of();
                    call(session, () -> sink.started(start.getLsn("recptr"), (int) start.getLong("tli"),
                            tablespaces));
                }
                case 'd' -> {
                    if (!inCopy) {
                        throw session.protocolViolation("CopyData outside COPY during BASE_BACKUP");
                    }
                    byte[] buffer = stream.buffer();
                    int offset = stream.bodyOffset();
                    int length = stream.bodyLength();
                    try {
                        call(session, () -> dispatch(buffer, offset, length, sink));
                    } catch (Malformed e) {
                        throw session.protocolViolation(e.getMessage());
                    }
                }
                case 'c' -> {
                    inCopy = false;
                    copied = true;
                }
                case 'E' -> {
                    if (error == null) {
                        error = session.error();
                    }
                    inCopy = false;
                }
                case 'N' -> session.notice();
                case 'S' -> session.parameterStatus();
                case 'Z' -> {
                    if (error != null) {
                        throw error;
                    }
                    if (before.isEmpty() || after.isEmpty()) {
                        throw session.protocolViolation("BASE_BACKUP ended without its start or end position");
                    }
                    Row start = first(session, before.getFirst(), "start position");
                    Row end = first(session, after.getFirst(), "end position");
                    return new BaseBackupResult(start.getLsn("recptr"), (int) start.getLong("tli"),
                            end.getLsn("recptr"), (int) end.getLong("tli"),
                            before.size() > 1 ? tablespaces(before.get(1)) : List.of());
                }
                default -> throw session.protocolViolation("unexpected message '" + stream.type()
                        + "' during BASE_BACKUP");
            }
        }
    }

    /** Delivers one CopyData payload of the BASE_BACKUP stream to the sink. */
    static void dispatch(byte[] buffer, int offset, int length, BaseBackupSink sink) throws IOException {
        if (length < 1) {
            throw new Malformed("empty CopyData in BASE_BACKUP");
        }
        int limit = offset + length;
        switch (buffer[offset]) {
            case 'n' -> {
                int nameEnd = Bytes.nul(buffer, offset + 1, limit);
                int locationEnd = nameEnd < 0 ? -1 : Bytes.nul(buffer, nameEnd + 1, limit);
                if (locationEnd < 0) {
                    throw new Malformed("malformed new-archive message in BASE_BACKUP");
                }
                sink.archiveStart(Bytes.utf8(buffer, offset + 1, nameEnd - offset - 1),
                        Bytes.utf8(buffer, nameEnd + 1, locationEnd - nameEnd - 1));
            }
            case 'd' -> sink.data(buffer, offset + 1, length - 1);
            case 'p' -> {
                if (length < 9) {
                    throw new Malformed("progress message of " + length + " bytes in BASE_BACKUP");
                }
                sink.progress(Bytes.int64(buffer, offset + 1));
            }
            case 'm' -> sink.manifestStart();
            default -> throw new Malformed("unknown BASE_BACKUP message type '"
                    + (char) (buffer[offset] & 0xff) + "'");
        }
    }

    private static Row first(WireSession session, WireSession.Result result, String what) {
        if (result.rows().isEmpty() || !result.columns().contains("recptr") || !result.columns().contains("tli")) {
            throw session.protocolViolation("BASE_BACKUP's " + what + " result has columns " + result.columns()
                    + " and " + result.rows().size() + " rows");
        }
        return result.rows().getFirst();
    }

    private static List<BaseBackupResult.Tablespace> tablespaces(WireSession.Result result) {
        List<BaseBackupResult.Tablespace> tablespaces = new ArrayList<>();
        for (Row row : result.rows()) {
            String oid = row.columns().contains("spcoid") ? row.get("spcoid") : null;
            String location = row.columns().contains("spclocation") ? row.get("spclocation") : null;
            String size = row.columns().contains("size") ? row.get("size") : null;
            tablespaces.add(new BaseBackupResult.Tablespace(
                    Optional.ofNullable(oid).map(Long::parseLong),
                    Optional.ofNullable(location),
                    size == null ? OptionalLong.empty() : OptionalLong.of(Long.parseLong(size))));
        }
        return tablespaces;
    }

    /** A BASE_BACKUP CopyData payload that does not parse. */
    static final class Malformed extends IllegalArgumentException {
        Malformed(String message) {
            super(message);
        }
    }

    private interface SinkCall {
        void run() throws IOException;
    }

    /** Runs a sink callback; if it fails, the backup is abandoned: the connection is closed and the failure rethrown. */
    private static void call(WireSession session, SinkCall call) {
        try {
            call.run();
        } catch (IOException e) {
            session.close();
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "base backup from " + session.target()
                    + " aborted: storing it failed: " + e.getMessage() + "; the connection is closed", e);
        } catch (RuntimeException | Error e) {
            session.close();
            throw e;
        }
    }
}
