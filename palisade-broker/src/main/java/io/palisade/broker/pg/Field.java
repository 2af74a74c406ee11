package io.palisade.broker.pg;

import static java.util.Objects.requireNonNull;

/** One column of a RowDescription, exactly as PostgreSQL described it. */
public record Field(String name, int tableOid, int columnNumber, int typeOid, int typeSize, int typeModifier) {
    public Field {
        requireNonNull(name, "name is null");
    }
}
