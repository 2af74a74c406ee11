package io.palisade.agent.shared;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Rung;

/**
 * The two shared rungs: how a tenant is laid out on a shared server. {@link #DATABASE}: a database of its own, owned by
 * its role. {@link #SCHEMA}: a schema of its own, owned by its role, inside the server's one shared database.
 */
public enum TenantLayout {
    DATABASE(Rung.DATABASE),
    SCHEMA(Rung.SCHEMA);

    /** The database every {@link #SCHEMA} tenant lives in. */
    public static final String SHARED_DATABASE = "tenants";

    private final Rung rung;

    TenantLayout(Rung rung) {
        this.rung = rung;
    }

    /** The rung this layout implements. */
    public Rung rung() {
        return rung;
    }

    public static TenantLayout of(Rung rung) {
        for (TenantLayout layout : values()) {
            if (layout.rung == rung) {
                return layout;
            }
        }
        throw new PalisadeException(ErrorCode.INTERNAL, "not a shared rung: " + rung);
    }
}
