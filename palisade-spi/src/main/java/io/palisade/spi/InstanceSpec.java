package io.palisade.spi;

import static java.util.Objects.requireNonNull;

import java.util.regex.Pattern;

/**
 * What a driver needs to provision or start one instance. The id is DNS-label safe and stable for the database's life;
 * drivers derive every on-host name (directories, cgroups, namespaces) from it.
 */
public record InstanceSpec(String id, PostgresVersion version, Plan plan, String username, String database) {
    private static final Pattern ID = Pattern.compile("[a-z][a-z0-9-]{2,40}[a-z0-9]");

    public InstanceSpec {
        requireNonNull(id, "id is null");
        requireNonNull(version, "version is null");
        requireNonNull(plan, "plan is null");
        requireNonNull(username, "username is null");
        requireNonNull(database, "database is null");
        if (!ID.matcher(id).matches()) {
            throw PalisadeException.invalid("invalid database id '" + id + "'");
        }
    }
}
