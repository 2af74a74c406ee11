package io.palisade.store;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Endpoint;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.Rung;
import io.palisade.spi.ServerLogin;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;

/**
 * One database as the control plane knows it. Secret columns stay encrypted here ({@code passwordEnc},
 * {@code brokerTokenEnc}); {@code toString} omits them. {@code serverLogin} is set on the shared rungs: the role and
 * database the shared server knows the tenant by.
 */
public record DatabaseRecord(
        String id,
        String accountId,
        String label,
        Rung isolation,
        PostgresVersion version,
        Plan plan,
        boolean persistent,
        Integer ttlSeconds,
        Instant expiresAt,
        Integer suspendAfterSeconds,
        String host,
        DatabaseState state,
        String stateReason,
        String username,
        String database,
        String passwordEnc,
        String brokerTokenHash,
        String brokerTokenEnc,
        Optional<Endpoint> endpoint,
        Optional<ServerLogin> serverLogin,
        Map<String, String> labels,
        Instant createdAt,
        Instant updatedAt,
        Instant lastActiveAt) {
    public DatabaseRecord {
        requireNonNull(id, "id is null");
        requireNonNull(accountId, "accountId is null");
        requireNonNull(label, "label is null");
        requireNonNull(isolation, "isolation is null");
        requireNonNull(version, "version is null");
        requireNonNull(plan, "plan is null");
        requireNonNull(host, "host is null");
        requireNonNull(state, "state is null");
        requireNonNull(username, "username is null");
        requireNonNull(database, "database is null");
        requireNonNull(passwordEnc, "passwordEnc is null");
        requireNonNull(brokerTokenHash, "brokerTokenHash is null");
        requireNonNull(brokerTokenEnc, "brokerTokenEnc is null");
        requireNonNull(endpoint, "endpoint is null");
        requireNonNull(serverLogin, "serverLogin is null");
        labels = Map.copyOf(requireNonNull(labels, "labels is null"));
        requireNonNull(createdAt, "createdAt is null");
        requireNonNull(updatedAt, "updatedAt is null");
        requireNonNull(lastActiveAt, "lastActiveAt is null");
    }

    @Override
    public String toString() {
        return "DatabaseRecord[id=" + id + ", account=" + accountId + ", isolation=" + isolation + ", state=" + state + "]";
    }
}
