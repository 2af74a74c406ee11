package io.palisade.agent.shared;

import io.palisade.spi.IsolationDriver;
import io.palisade.testing.AbstractTestIsolationDriver;

/** The driver contract on one shared rung, over a pool of shared servers of its own. */
abstract class AbstractTestSharedRungDriver extends AbstractTestIsolationDriver {
    private SharedRungFixture fixture;

    protected abstract TenantLayout layout();

    @Override
    protected IsolationDriver createDriver() {
        fixture = new SharedRungFixture();
        return new SharedRungDriver(fixture.pool, layout());
    }

    @Override
    protected void assertNothingLeft(String id) {
        fixture.assertNothingLeft(id);
    }

    @Override
    protected void cleanUp() {
        fixture.close();
    }
}
