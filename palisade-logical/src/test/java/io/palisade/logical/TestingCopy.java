package io.palisade.logical;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

/**
 * What the move's data path will do, done simply for tests: every table's rows copied with COPY (generated columns
 * left to the target, triggers and foreign keys quiet as under logical replication, {@code session_replication_role =
 * replica}), then every sequence's value. Both connections a superuser's, outside a transaction.
 */
final class TestingCopy {
    private TestingCopy() {}

    static void copy(Connection source, String fromNamespace, Connection target, String toNamespace) throws Exception {
        String from = quote(fromNamespace);
        String to = quote(toNamespace);
        List<String[]> tables = new ArrayList<>();
        try (PreparedStatement statement = source.prepareStatement("""
                select quote_ident(c.relname), string_agg(quote_ident(a.attname), ', ' order by a.attnum)
                from pg_class c join pg_attribute a on a.attrelid = c.oid
                where c.relnamespace = quote_ident(?)::regnamespace and c.relkind = 'r'
                  and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
                group by c.relname""")) {
            statement.setString(1, fromNamespace);
            try (ResultSet rs = statement.executeQuery()) {
                while (rs.next()) {
                    tables.add(new String[] {rs.getString(1), rs.getString(2)});
                }
            }
        }
        CopyManager out = source.unwrap(PGConnection.class).getCopyAPI();
        CopyManager in = target.unwrap(PGConnection.class).getCopyAPI();
        target.setAutoCommit(false);
        try (Statement statement = target.createStatement()) {
            statement.execute("set local session_replication_role = replica");
            for (String[] table : tables) {
                ByteArrayOutputStream rows = new ByteArrayOutputStream();
                out.copyOut("copy (select " + table[1] + " from only " + from + "." + table[0] + ") to stdout", rows);
                in.copyIn("copy " + to + "." + table[0] + " (" + table[1] + ") from stdin",
                        new ByteArrayInputStream(rows.toByteArray()));
            }
            try (PreparedStatement sequences = source.prepareStatement("select quote_ident(c.relname),"
                            + " pg_sequence_last_value(c.oid) from pg_class c"
                            + " where c.relnamespace = quote_ident(?)::regnamespace and c.relkind = 'S'");
                    PreparedStatement setval = target.prepareStatement("select setval(?::regclass, ?, true)")) {
                sequences.setString(1, fromNamespace);
                try (ResultSet rs = sequences.executeQuery()) {
                    while (rs.next()) {
                        if (rs.getObject(2) != null) {
                            setval.setString(1, to + "." + rs.getString(1));
                            setval.setLong(2, rs.getLong(2));
                            setval.execute();
                        }
                    }
                }
            }
            target.commit();
        } finally {
            target.setAutoCommit(true);
        }
    }

    private static String quote(String name) {
        return '"' + name.replace("\"", "\"\"") + '"';
    }
}
