package io.palisade.spi;

import java.util.Optional;

/**
 * Checks a credential sent to a database's broker routes (its broker token; palisade also takes the API key of the
 * account that owns it) and returns the login the broker uses on the tenant's behalf. An unknown database, a wrong
 * token and another account's credential all give {@code Optional.empty()}.
 */
@FunctionalInterface
public interface BrokerTokenVerifier {
    Optional<TenantCredentials> verify(String databaseId, String token);
}
