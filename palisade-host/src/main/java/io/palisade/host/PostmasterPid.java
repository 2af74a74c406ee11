package io.palisade.host;

import io.palisade.spi.PalisadeException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * What a running postmaster wrote to its data directory's {@code postmaster.pid}: its pid (line 1) and its start time
 * (line 3, seconds since the epoch). The file is the tenant's to write, so nothing here is trusted beyond its syntax:
 * callers check the pid against {@code /proc} before they act on it.
 */
record PostmasterPid(long pid, Instant startedAt) {
    /** The file's content, read without following links; empty when it is missing, unreadable or malformed. */
    static Optional<PostmasterPid> read(Path dataDir) {
        try {
            List<String> lines = SafeFiles.readSmall(dataDir.resolve("postmaster.pid"), 4096).orElse("").lines()
                    .map(String::strip).toList();
            if (lines.isEmpty() || lines.getFirst().isEmpty()) {
                return Optional.empty();
            }
            long pid = Long.parseLong(lines.getFirst());
            Instant started = lines.size() > 2 ? Instant.ofEpochSecond(Long.parseLong(lines.get(2))) : Instant.now();
            return pid > 1 ? Optional.of(new PostmasterPid(pid, started)) : Optional.empty();
        } catch (PalisadeException | NumberFormatException | java.time.DateTimeException e) {
            return Optional.empty();
        }
    }
}
