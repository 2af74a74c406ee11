package io.palisade.api;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;

/** Body of {@code POST /v1/databases}; every field is optional. Unknown fields are rejected by the JSON mapper. */
public record CreateDatabaseRequest(
        @JsonProperty("label") String label,
        @JsonProperty("isolation") String isolation,
        @JsonProperty("plan") String plan,
        @JsonProperty("cpu") Integer cpu,
        @JsonProperty("memory_mb") Integer memoryMb,
        @JsonProperty("version") String version,
        @JsonProperty("persistent") Boolean persistent,
        @JsonProperty("ttl_seconds") Integer ttlSeconds,
        @JsonProperty("labels") Map<String, String> labels,
        @JsonProperty("region") String region,
        @JsonProperty("suspend_after_seconds") Object suspendAfterSeconds,
        @JsonProperty("durability") String durability,
        @JsonProperty("restore") RestoreRequest restore) {
    public static CreateDatabaseRequest empty() {
        return new CreateDatabaseRequest(null, null, null, null, null, null, null, null, null, null, null, null, null);
    }

    /** The same request with other labels and settings taken from a source database (restore, fork). */
    CreateDatabaseRequest withDefaults(String defaultLabel, String defaultIsolation, String defaultPlan) {
        return new CreateDatabaseRequest(label == null ? defaultLabel : label, isolation == null ? defaultIsolation : isolation,
                plan == null && cpu == null && memoryMb == null ? defaultPlan : plan, cpu, memoryMb, version, persistent,
                ttlSeconds, labels, region, suspendAfterSeconds, durability, null);
    }
}
