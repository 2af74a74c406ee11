package io.palisade.server.hostile;

import io.palisade.server.hostile.HostileTenants.Tenant;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;

/**
 * One palisade for a class of attacks, with the two tenants every attack must leave working: the {@code owner} (a
 * process-rung database of the attacked account) and a {@code neighbour} (a database-rung database of another
 * account). Subclasses add their own tenants in {@link #moreTenants()}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class AbstractHostileAttack {
    protected HostileTenants tenants;
    protected Tenant owner;
    protected Tenant neighbour;

    /** The prefix of the tenants' labels. */
    protected abstract String label();

    /** Creates whatever else the class attacks with; called once the owner and the neighbour exist. */
    protected void moreTenants() {}

    @BeforeAll
    final void openTenants() {
        tenants = HostileTenants.open();
        owner = tenants.create(tenants.ownerKey(), label() + "-owner", "process");
        neighbour = tenants.create(tenants.otherKey(), label() + "-neighbour", "database");
        moreTenants();
    }

    @AfterAll
    final void closeTenants() {
        if (tenants != null) {
            tenants.close();
        }
    }
}
