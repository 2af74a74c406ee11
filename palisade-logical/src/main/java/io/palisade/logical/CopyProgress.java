package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Where a {@link LogicalCopy} stands. {@code tables}: each published table's initial-copy state on the target
 * ({@code pg_subscription_rel.srsubstate}); {@code copiedBytes} of {@code totalBytes}: the source size
 * ({@code pg_table_size}) of the tables whose copy is done plus the bytes the running copies have sent so far
 * ({@code pg_stat_progress_copy}), an estimate; {@code lagBytes}: WAL the source wrote that the target has not
 * confirmed yet ({@code pg_current_wal_lsn()} − the slot's {@code confirmed_flush_lsn}; on a shared server this
 * includes other tenants' WAL not yet passed); {@code errors}: apply and initial-copy errors the target counted (it
 * retries them); {@code confirmedLsn}: the slot's {@code confirmed_flush_lsn} as a byte position (how fast it moves
 * is how fast the target applies).
 */
public record CopyProgress(SortedMap<String, TableState> tables, long copiedBytes, long totalBytes, long lagBytes,
        long errors, long confirmedLsn) {
    public CopyProgress {
        tables = new TreeMap<>(requireNonNull(tables, "tables is null"));
        if (copiedBytes < 0 || totalBytes < 0 || lagBytes < 0 || errors < 0) {
            throw new IllegalArgumentException("negative progress: " + copiedBytes + "/" + totalBytes + " bytes, lag "
                    + lagBytes + ", errors " + errors);
        }
    }

    /** Progress without the slot's confirmed position (0: unknown). */
    public CopyProgress(SortedMap<String, TableState> tables, long copiedBytes, long totalBytes, long lagBytes,
            long errors) {
        this(tables, copiedBytes, totalBytes, lagBytes, errors, 0);
    }

    /**
     * Every table's initial copy is over and the change stream applies to it (true for a tenant without tables: the
     * subscription lists the published tables when it is created, so an empty list stays empty).
     */
    public boolean copied() {
        return tables.values().stream().allMatch(s -> s == TableState.READY);
    }

    /** Tables by state, for messages: {@code ready 12, data copy 2}. */
    public String summary() {
        Map<TableState, Long> counts = new TreeMap<>();
        tables.values().forEach(s -> counts.merge(s, 1L, Long::sum));
        StringBuilder text = new StringBuilder();
        counts.forEach((state, n) -> text.append(text.isEmpty() ? "" : ", ").append(state.label()).append(' ')
                .append(n));
        return (text.isEmpty() ? "no tables" : text) + "; " + copiedBytes + " of " + totalBytes + " bytes copied, lag "
                + lagBytes + " bytes, " + errors + " errors";
    }

    /** {@code pg_subscription_rel.srsubstate}. */
    public enum TableState {
        INIT('i', "init"),
        DATA_COPY('d', "data copy"),
        FINISHED_COPY('f', "finished copy"),
        SYNC_DONE('s', "synchronized"),
        READY('r', "ready");

        private final char code;
        private final String label;

        TableState(char code, String label) {
            this.code = code;
            this.label = label;
        }

        public String label() {
            return label;
        }

        static TableState of(String code) {
            for (TableState state : values()) {
                if (code != null && code.length() == 1 && code.charAt(0) == state.code) {
                    return state;
                }
            }
            throw new IllegalArgumentException("unknown pg_subscription_rel.srsubstate " + code);
        }
    }
}
