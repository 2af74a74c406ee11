package io.palisade.logical;

import io.palisade.logical.CopyProgress.TableState;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/** What {@link LogicalCopy} reads while it runs: progress, the slot's position, sequences. Stateless. */
final class CopyQueries {
    private CopyQueries() {}

    static CopyProgress progress(Connection source, Connection target, CopyPlan plan, String tableNamespace)
            throws SQLException {
        Catalog onTarget = new Catalog(target);
        TreeMap<String, TableState> tables = new TreeMap<>();
        for (Catalog.Row row : onTarget.rows("""
                select c.relname::text as name, r.srsubstate::text as state
                from pg_subscription s join pg_subscription_rel r on r.srsubid = s.oid
                join pg_class c on c.oid = r.srrelid
                where s.subname = ? and s.subdbid = (select oid from pg_database where datname = current_database())
                """, plan.name())) {
            tables.put(row.text("name"), TableState.of(row.text("state")));
        }
        long errors = onTarget.rows("select coalesce(sum(apply_error_count + sync_error_count), 0)::bigint as n"
                + " from pg_stat_subscription_stats where subname = ?", plan.name()).getFirst().number("n");
        Catalog onSource = new Catalog(source);
        long total = 0;
        long copied = 0;
        for (Catalog.Row row : onSource.rows("""
                select c.relname::text as name, pg_table_size(c.oid) as size,
                    coalesce((select max(p.bytes_processed) from pg_stat_progress_copy p
                        where p.relid = c.oid and p.command = 'COPY TO'), 0) as sent
                from pg_class c where c.relnamespace = quote_ident(?)::regnamespace and c.relkind = 'r'
                """, plan.source().namespace())) {
            long size = row.number("size");
            total += size;
            TableState state = tables.getOrDefault(row.text("name"), TableState.INIT);
            copied += switch (state) {
                case INIT -> 0;
                case DATA_COPY -> Math.min(size, row.number("sent"));
                case FINISHED_COPY, SYNC_DONE, READY -> size;
            };
        }
        Catalog.Row slot = onSource.rows("select coalesce((select pg_wal_lsn_diff(pg_current_wal_lsn(),"
                + " confirmed_flush_lsn) from pg_replication_slots where slot_name = ?), 0)::bigint as lag,"
                + " coalesce((select pg_wal_lsn_diff(confirmed_flush_lsn, '0/0') from pg_replication_slots"
                + " where slot_name = ?), 0)::bigint as confirmed", plan.name(), plan.name()).getFirst();
        return new CopyProgress(tables, copied, total, Math.max(0, slot.number("lag")), errors,
                Math.max(0, slot.number("confirmed")));
    }

    /** Whether the subscription's slot has confirmed the source's WAL up to {@code lsn}. */
    static boolean confirmed(Connection source, CopyPlan plan, String lsn) throws SQLException {
        return "true".equals(new Catalog(source).value("select (select confirmed_flush_lsn >= ?::pg_lsn from"
                + " pg_replication_slots where slot_name = ?)::text", lsn, plan.name()));
    }

    static int syncSequences(Connection source, Connection target, CopyPlan plan, String tableNamespace)
            throws SQLException {
        Catalog onSource = new Catalog(source);
        Map<String, String[]> values = new HashMap<>();
        // from the catalog by oid, in one statement: nothing selects from a relation of the tenant's (one swapped for
        // a view between a listing and a read would run the tenant's code as the superuser)
        for (Catalog.Row row : onSource.rows("select c.relname::text as name, s.seqstart::text as start,"
                + " pg_catalog.pg_sequence_last_value(c.oid::pg_catalog.regclass)::text as value"
                + " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=)"
                + " c.relnamespace join pg_catalog.pg_sequence s on s.seqrelid operator(pg_catalog.=) c.oid"
                + " where n.nspname operator(pg_catalog.=) ?::pg_catalog.name and c.relkind operator(pg_catalog.=)"
                + " 'S'", plan.source().namespace())) {
            boolean called = row.text("value") != null;
            values.put(row.text("name"), new String[] {called ? row.text("value") : row.text("start"),
                    Boolean.toString(called)});
        }
        Catalog onTarget = new Catalog(target);
        int synced = 0;
        for (Map.Entry<String, String[]> entry : values.entrySet()) {
            String oid = onTarget.value("select (select c.oid from pg_class c join pg_namespace n on n.oid ="
                    + " c.relnamespace where c.relkind = 'S' and c.relname = ? and n.nspname in (?, ?)"
                    + " order by n.nspname = ? desc limit 1)::text", entry.getKey(), plan.target().namespace(),
                    tableNamespace, plan.target().namespace());
            if (oid == null) {
                throw new PalisadeException(ErrorCode.CONFLICT, "move " + plan.moveId() + ": sequence "
                        + entry.getKey() + " of the source has no counterpart in schema " + plan.target().namespace()
                        + " of the target; the tenant changed its schema during the move: cancel and start again");
            }
            onTarget.value("select setval(?::oid::regclass, ?::bigint, ?::boolean)::text", Long.parseLong(oid),
                    entry.getValue()[0], entry.getValue()[1]);
            synced++;
        }
        return synced;
    }
}
