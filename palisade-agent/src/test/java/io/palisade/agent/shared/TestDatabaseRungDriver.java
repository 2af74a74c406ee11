package io.palisade.agent.shared;

import io.palisade.spi.IsolationDriver;
import io.palisade.testing.AbstractTestIsolationDriver;

class TestDatabaseRungDriver extends AbstractTestIsolationDriver {
    private SharedRungFixture fixture;

    @Override
    protected IsolationDriver createDriver() {
        fixture = new SharedRungFixture();
        return new SharedRungDriver(fixture.pool, TenantLayout.DATABASE);
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
