package io.palisade.spi;

import static java.util.Objects.requireNonNull;

/** Where an instance's PostgreSQL listens, as seen from the host palisade runs on. */
public record Endpoint(String host, int port) {
    public Endpoint {
        requireNonNull(host, "host is null");
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("port out of range: " + port);
        }
    }

    @Override
    public String toString() {
        return host.contains(":") ? "[" + host + "]:" + port : host + ":" + port;
    }
}
