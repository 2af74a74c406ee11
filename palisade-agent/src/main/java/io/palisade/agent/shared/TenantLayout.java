package io.palisade.agent.shared;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;

/**
 * The two shared rungs: how a tenant is laid out on a shared server. {@link #DATABASE}: a database of its own, owned by
 * its role. {@link #SCHEMA}: a schema of its own, owned by its role, inside the server's one shared database.
 */
public enum TenantLayout {
    DATABASE("database"),
    SCHEMA("schema");

    /** The database every {@link #SCHEMA} tenant lives in. */
    public static final String SHARED_DATABASE = "tenants";

    private final String rung;

    TenantLayout(String rung) {
        this.rung = rung;
    }

    /** The rung name in the API. */
    public String rung() {
        return rung;
    }

    public static TenantLayout fromRung(String rung) {
        for (TenantLayout layout : values()) {
            if (layout.rung.equals(rung)) {
                return layout;
            }
        }
        throw new PalisadeException(ErrorCode.INTERNAL, "not a shared rung: " + rung);
    }
}
