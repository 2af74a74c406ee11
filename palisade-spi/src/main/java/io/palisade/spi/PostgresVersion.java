package io.palisade.spi;

import java.util.List;

/** A PostgreSQL major version palisade can run, with the exact binaries release behind it. */
public enum PostgresVersion {
    V15("15", "15.14.0"),
    V16("16", "16.11.0"),
    V17("17", "17.6.0");

    public static final PostgresVersion DEFAULT = V16;

    private final String major;
    private final String release;

    PostgresVersion(String major, String release) {
        this.major = major;
        this.release = release;
    }

    public String major() {
        return major;
    }

    /** The release of the {@code io.zonky.test.postgres} binaries artifact, e.g. {@code 16.11.0}. */
    public String release() {
        return release;
    }

    public static PostgresVersion fromMajor(String major) {
        for (PostgresVersion version : values()) {
            if (version.major.equals(major)) {
                return version;
            }
        }
        throw PalisadeException.invalid("unsupported PostgreSQL version '" + major + "'; supported: "
                + List.of(values()).stream().map(PostgresVersion::major).toList());
    }
}
