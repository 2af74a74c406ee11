package io.palisade.pgwire;

import java.util.ArrayList;
import java.util.List;

/** Parses the session's current RowDescription or DataRow message (text format). Stateless. */
final class RowParser {
    private RowParser() {}

    static List<String> columns(WireSession session) {
        PgStream stream = session.stream();
        byte[] body = stream.buffer();
        int at = stream.bodyOffset();
        int limit = at + stream.bodyLength();
        int count = Bytes.int16(body, at);
        at += 2;
        List<String> names = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int nul = Bytes.nul(body, at, limit);
            if (nul < 0 || nul + 19 > limit) {
                throw session.protocolViolation("malformed RowDescription");
            }
            names.add(Bytes.utf8(body, at, nul - at));
            at = nul + 19;
        }
        return List.copyOf(names);
    }

    static Row row(WireSession session, List<String> columns) {
        PgStream stream = session.stream();
        byte[] body = stream.buffer();
        int at = stream.bodyOffset();
        int limit = at + stream.bodyLength();
        int count = Bytes.int16(body, at);
        at += 2;
        if (count != columns.size()) {
            throw session.protocolViolation("DataRow with " + count + " values for " + columns.size() + " columns");
        }
        List<String> values = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            if (at + 4 > limit) {
                throw session.protocolViolation("DataRow shorter than its values");
            }
            int length = Bytes.int32(body, at);
            at += 4;
            if (length < 0) {
                values.add(null);
            } else {
                if (at + length > limit) {
                    throw session.protocolViolation("DataRow value runs past the message");
                }
                values.add(Bytes.utf8(body, at, length));
                at += length;
            }
        }
        return new Row(columns, values);
    }
}
