package io.palisade.spi;

import java.util.Optional;

/**
 * Checks a database's broker token and returns the login the broker uses on the tenant's behalf. Unknown database and
 * wrong token both give {@code Optional.empty()}.
 */
@FunctionalInterface
public interface BrokerTokenVerifier {
    Optional<TenantCredentials> verify(String databaseId, String token);
}
