package io.palisade.agent.shared;

class TestDatabaseRungDriver extends AbstractTestSharedRungDriver {
    @Override
    protected TenantLayout layout() {
        return TenantLayout.DATABASE;
    }
}
