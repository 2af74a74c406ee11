package io.palisade.agent.shared;

import io.palisade.spi.IsolationDriver;
import io.palisade.testing.AbstractTestIsolationDriver;

class TestSchemaRungDriver extends AbstractTestIsolationDriver {
    private SharedRungFixture fixture;

    @Override
    protected IsolationDriver createDriver() {
        fixture = new SharedRungFixture();
        return new SharedRungDriver(fixture.pool, TenantLayout.SCHEMA);
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
