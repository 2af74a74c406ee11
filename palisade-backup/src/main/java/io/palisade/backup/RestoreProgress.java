package io.palisade.backup;

/** Receives a restore's or fork's progress: the phase, base backup bytes and WAL bytes so far. */
@FunctionalInterface
public interface RestoreProgress {
    RestoreProgress NONE = (phase, bytes, walBytes) -> {};

    void update(String phase, long bytes, long walBytes);
}
