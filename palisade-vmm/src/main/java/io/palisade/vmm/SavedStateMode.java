package io.palisade.vmm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What a suspend wrote beside a saved state ({@link InstancePaths#stateModeFile()}), one fact per line: where the
 * guest's RAM is ({@code ignore-shared}: in the instance's memory file; {@code full}: in the state stream), and, as
 * {@code postgres-answered}, that PostgreSQL answered a protocol probe just before the save. A state without the file
 * (or the line) is one whose RAM is in the memory file and whose PostgreSQL must be probed after the restore.
 * Immutable.
 */
record SavedStateMode(boolean ramInState, boolean postgresAnswered) {
    private static final String FULL = "full";
    private static final String IGNORE_SHARED = "ignore-shared";
    private static final String POSTGRES_ANSWERED = "postgres-answered";

    /** Reads the mode file; a missing file reads as RAM in the memory file, PostgreSQL not known to answer. */
    static SavedStateMode read(Path file) throws IOException {
        if (!Files.exists(file)) {
            return new SavedStateMode(false, false);
        }
        List<String> lines = Files.readAllLines(file).stream().map(String::strip).toList();
        return new SavedStateMode(lines.contains(FULL), lines.contains(POSTGRES_ANSWERED));
    }

    /** Writes the mode file (private, synced): it must reach the disk before the state it describes is published. */
    void write(Path file) throws IOException {
        VmFiles.writePrivate(file, (ramInState ? FULL : IGNORE_SHARED) + "\n"
                + (postgresAnswered ? POSTGRES_ANSWERED + "\n" : ""), true);
    }

    /** The guest's RAM is in the instance's memory file (QEMU's {@code x-ignore-shared}), not in the state stream. */
    boolean ignoreShared() {
        return !ramInState;
    }
}
