package io.palisade.backup;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * What the archive says about one base backup, next to its parts (sealed like everything else), so that an archive can
 * be read without the metadata store: positions, and every part's size and SHA-256 to verify on restore.
 */
public record BaseBackupMeta(
        @JsonProperty("backup_id") String backupId,
        @JsonProperty("system_id") String systemId,
        @JsonProperty("timeline") int timeline,
        @JsonProperty("start_lsn") String startLsn,
        @JsonProperty("end_lsn") String endLsn,
        @JsonProperty("parts") List<Part> parts,
        @JsonProperty("manifest_sha256") String manifestSha256) {
    public BaseBackupMeta {
        requireNonNull(backupId, "backupId is null");
        parts = List.copyOf(requireNonNull(parts, "parts is null"));
    }

    public record Part(@JsonProperty("key") String key, @JsonProperty("size") long size,
            @JsonProperty("sha256") String sha256) {}
}
