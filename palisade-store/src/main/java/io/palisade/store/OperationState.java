package io.palisade.store;

/** State of a restore, fork or backup operation. */
public enum OperationState {
    RUNNING, SUCCEEDED, FAILED;

    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static OperationState fromWire(String value) {
        for (OperationState v : values()) {
            if (v.wireName().equals(value)) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown OperationState '" + value + "'");
    }
}
