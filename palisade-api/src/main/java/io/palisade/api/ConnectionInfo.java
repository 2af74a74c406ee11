package io.palisade.api;

import io.palisade.spi.TenantCredentials;
import io.palisade.store.DatabaseRecord;
import java.util.Map;

/**
 * How clients reach a database: builds the connection fields of API responses. The server picks the implementation
 * (straight to the instance before the proxy is configured, through the TLS proxy otherwise).
 */
public interface ConnectionInfo {
    /** Connection fields: at least {@code host}, {@code port}, {@code connection_url}; more for special client forms. */
    Map<String, Object> describe(DatabaseRecord database, TenantCredentials credentials);

    /** The broker base URL of a database. */
    String brokerUrl(DatabaseRecord database);
}
