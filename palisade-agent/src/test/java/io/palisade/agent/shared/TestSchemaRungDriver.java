package io.palisade.agent.shared;

class TestSchemaRungDriver extends AbstractTestSharedRungDriver {
    @Override
    protected TenantLayout layout() {
        return TenantLayout.SCHEMA;
    }
}
