package io.palisade.api;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.palisade.backup.RestoreTarget;
import io.palisade.pgwire.Lsn;
import io.palisade.spi.PalisadeException;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;

/**
 * Where to restore to: exactly one of {@code target_time} (RFC 3339), {@code target_lsn} or {@code "latest": true};
 * nothing at all means latest. {@code from} names the source database when the request makes a new one.
 */
public record RestoreRequest(
        @JsonProperty("from") String from,
        @JsonProperty("target_time") String targetTime,
        @JsonProperty("target_lsn") String targetLsn,
        @JsonProperty("latest") Boolean latest) {

    RestoreTarget target() {
        int given = (targetTime == null ? 0 : 1) + (targetLsn == null ? 0 : 1) + (Boolean.TRUE.equals(latest) ? 1 : 0);
        if (given > 1) {
            throw PalisadeException.invalid("give only one of target_time, target_lsn and \"latest\": true");
        }
        if (targetTime != null) {
            try {
                return new RestoreTarget.AtTime(OffsetDateTime.parse(targetTime).toInstant());
            } catch (DateTimeParseException e) {
                throw PalisadeException.invalid("target_time '" + targetTime
                        + "' is not an RFC 3339 time such as 2026-12-01T10:15:30Z");
            }
        }
        if (targetLsn != null) {
            try {
                return new RestoreTarget.AtLsn(Lsn.parse(targetLsn));
            } catch (RuntimeException e) {
                throw PalisadeException.invalid("target_lsn '" + targetLsn + "' is not a WAL position such as 0/16B3748");
            }
        }
        return new RestoreTarget.Latest();
    }
}
