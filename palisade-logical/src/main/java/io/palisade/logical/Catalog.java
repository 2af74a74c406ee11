package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.PalisadeException;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Catalog queries on one JDBC connection, each row read into a {@link Row}. Parameters are {@code Long} (bind them as
 * {@code ?::oid}) or {@code String}. Not thread-safe (neither is the connection).
 */
final class Catalog {
    private final Connection connection;

    Catalog(Connection connection) {
        this.connection = requireNonNull(connection, "connection is null");
    }

    Connection connection() {
        return connection;
    }

    List<Row> rows(String sql, Object... params) throws SQLException {
        try (PreparedStatement statement = connection.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) {
                switch (params[i]) {
                    case Long number -> statement.setLong(i + 1, number);
                    case String text -> statement.setString(i + 1, text);
                    default -> throw new IllegalArgumentException("unsupported parameter " + params[i].getClass());
                }
            }
            try (ResultSet rs = statement.executeQuery()) {
                ResultSetMetaData meta = rs.getMetaData();
                List<Row> rows = new ArrayList<>();
                while (rs.next()) {
                    Map<String, Object> values = new HashMap<>();
                    for (int c = 1; c <= meta.getColumnCount(); c++) {
                        Object value = rs.getObject(c);
                        if (value instanceof Array array) {
                            value = Arrays.asList((Object[]) array.getArray());
                        }
                        values.put(meta.getColumnLabel(c), value);
                    }
                    rows.add(new Row(values));
                }
                return rows;
            }
        }
    }

    /** The single value of a query that returns one row and one column. */
    String value(String sql, Object... params) throws SQLException {
        List<Row> rows = rows(sql, params);
        if (rows.size() != 1 || rows.getFirst().values().size() != 1) {
            throw new IllegalStateException("expected one value from: " + sql);
        }
        Object value = rows.getFirst().values().values().iterator().next();
        return value == null ? null : value.toString();
    }

    /** The oids of a source's namespace and role; a clear error when either does not exist. */
    long[] resolve(Source source) throws SQLException {
        String namespace = value("select (select oid from pg_namespace where nspname = ?)::text", source.namespace());
        if (namespace == null) {
            throw PalisadeException.notFound("schema " + source.namespace() + " does not exist in"
                    + " the source database; check the tenant's namespace");
        }
        String role = value("select (select oid from pg_roles where rolname = ?)::text", source.role());
        if (role == null) {
            throw PalisadeException.notFound("role " + source.role() + " does not exist on the"
                    + " source server; check the tenant's role");
        }
        return new long[] {Long.parseLong(namespace), Long.parseLong(role)};
    }

    /** One row of a catalog query, by column label. */
    record Row(Map<String, Object> values) {
        Row {
            requireNonNull(values, "values is null");
        }

        String text(String column) {
            Object value = get(column);
            return value == null ? null : value.toString();
        }

        long number(String column) {
            Object value = get(column);
            if (value == null) {
                throw new IllegalStateException("column " + column + " is null");
            }
            return ((Number) value).longValue();
        }

        boolean flag(String column) {
            return Boolean.TRUE.equals(get(column));
        }

        List<String> texts(String column) {
            Object value = get(column);
            if (value == null) {
                return List.of();
            }
            List<String> texts = new ArrayList<>();
            for (Object item : (List<?>) value) {
                texts.add(item == null ? null : item.toString());
            }
            return texts;
        }

        private Object get(String column) {
            if (!values.containsKey(column)) {
                throw new IllegalArgumentException("no column " + column + " in " + values.keySet());
            }
            return values.get(column);
        }
    }
}
