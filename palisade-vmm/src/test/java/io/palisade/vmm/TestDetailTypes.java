package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The typed details values ({@link CreatePath}, {@link ResumePath}, {@link ClockSync}, {@link RestoreReadiness}) keep
 * their wire names.
 */
class TestDetailTypes {
    @Test
    void wireNamesAreThoseTheDetailsMapAlwaysCarried() {
        assertThat(CreatePath.KEY).isEqualTo("create_path");
        assertThat(ResumePath.KEY).isEqualTo("resume_path");
        assertThat(ClockSync.KEY).isEqualTo("clock_sync");
        assertThat(CreatePath.CLONE.wireName()).isEqualTo("clone");
        assertThat(CreatePath.COLD.wireName()).isEqualTo("cold");
        assertThat(CreatePath.RESTORE.wireName()).isEqualTo("restore");
        assertThat(ResumePath.RESTORE.wireName()).isEqualTo("restore");
        assertThat(ResumePath.COLD.wireName()).isEqualTo("cold");
        assertThat(ClockSync.SERIAL.wireName()).isEqualTo("serial");
        assertThat(ClockSync.PENDING.wireName()).isEqualTo("pending");
        assertThat(ClockSync.SQL.wireName()).isEqualTo("sql");
        assertThat(RestoreReadiness.KEY).isEqualTo("restore_ready_by");
        assertThat(RestoreReadiness.GUEST_ACK.wireName()).isEqualTo("guest_ack");
        assertThat(RestoreReadiness.PROBE.wireName()).isEqualTo("probe");
        assertThat(RestoreReadiness.LOGIN.wireName()).isEqualTo("login");
        assertThat(RestoreReadiness.from(Map.of(RestoreReadiness.KEY, "guest_ack")))
                .contains(RestoreReadiness.GUEST_ACK);
    }

    @Test
    void valuesRoundTripThroughADetailsMap() {
        Map<String, String> details = new LinkedHashMap<>();
        assertThat(CreatePath.from(details)).isEmpty();
        CreatePath.CLONE.putInto(details);
        ClockSync.PENDING.putInto(details);
        ClockSync.SQL.putInto(details); // replaces the pending value in place
        ResumePath.COLD.putInto(details);
        assertThat(details).containsExactly(Map.entry("create_path", "clone"), Map.entry("clock_sync", "sql"),
                Map.entry("resume_path", "cold"));
        assertThat(CreatePath.from(details)).contains(CreatePath.CLONE);
        assertThat(ClockSync.from(details)).contains(ClockSync.SQL);
        assertThat(ResumePath.from(details)).contains(ResumePath.COLD);
        assertThat(CreatePath.from(Map.of(CreatePath.KEY, "warm"))).isEmpty();
    }
}
