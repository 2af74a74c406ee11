package io.palisade.store;

/** State of a base backup; only {@code complete} ones are used for restores. */
public enum BaseBackupState {
    RUNNING, COMPLETE, FAILED;

    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static BaseBackupState fromWire(String value) {
        for (BaseBackupState v : values()) {
            if (v.wireName().equals(value)) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown BaseBackupState '" + value + "'");
    }
}
