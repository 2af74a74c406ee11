package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;

/**
 * One row of a simple-query result: column names and text values ({@code null} for SQL NULL). Rows of one result share
 * their {@code columns} list. Immutable.
 */
public record Row(List<String> columns, List<String> values) {
    public Row {
        requireNonNull(columns, "columns is null");
        requireNonNull(values, "values is null");
        if (columns.size() != values.size()) {
            throw new IllegalArgumentException("row has " + values.size() + " values for " + columns.size()
                    + " columns");
        }
        columns = List.copyOf(columns);
        values = Collections.unmodifiableList(new ArrayList<>(values));
    }

    /** The text value of column {@code index} (from 0), or null for SQL NULL. */
    public String get(int index) {
        return values.get(index);
    }

    /** The text value of the first column called {@code column}, or null for SQL NULL. */
    public String get(String column) {
        int index = columns.indexOf(column);
        if (index < 0) {
            throw new IllegalArgumentException("no column '" + column + "' in this row; it has " + columns);
        }
        return values.get(index);
    }

    public Optional<String> find(String column) {
        return Optional.ofNullable(get(column));
    }

    public long getLong(String column) {
        return Long.parseLong(required(column));
    }

    public Lsn getLsn(String column) {
        return Lsn.parse(required(column));
    }

    private String required(String column) {
        String value = get(column);
        if (value == null) {
            throw new IllegalStateException("column '" + column + "' is NULL");
        }
        return value;
    }
}
