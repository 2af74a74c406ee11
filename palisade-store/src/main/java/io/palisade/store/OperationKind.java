package io.palisade.store;

/** What an operation does: restore as a new database, restore in place, fork, on-demand base backup. */
public enum OperationKind {
    RESTORE, RESTORE_IN_PLACE, FORK, BACKUP;

    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static OperationKind fromWire(String value) {
        for (OperationKind v : values()) {
            if (v.wireName().equals(value)) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown OperationKind '" + value + "'");
    }
}
