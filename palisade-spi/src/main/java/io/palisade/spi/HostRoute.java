package io.palisade.spi;

import static java.util.Objects.requireNonNull;

/**
 * A way, open for the duration of a move, for an instance's server to connect to a server listening on this host (the
 * move's source, for logical replication). {@link #endpoint()} is the address the instance's server dials; closing the
 * route removes whatever it opened (relay, firewall rules). Closing is idempotent.
 */
public interface HostRoute extends AutoCloseable {
    /** The address the instance's server dials to reach the host's server. */
    Endpoint endpoint();

    @Override
    void close();

    /** A route for an instance that shares the host's network: the host's address as it is, nothing to close. */
    static HostRoute direct(Endpoint hostEndpoint) {
        requireNonNull(hostEndpoint, "hostEndpoint is null");
        return new HostRoute() {
            @Override
            public Endpoint endpoint() {
                return hostEndpoint;
            }

            @Override
            public void close() {}
        };
    }
}
