package io.palisade.server;

/** The shared-rung lifecycle on the {@code schema} rung: each tenant has a schema of its own in a shared database. */
class TestSchemaRungLifecycle extends AbstractTestSharedRungLifecycle {
    @Override
    protected String isolation() {
        return "schema";
    }

    @Override
    protected Container container(String serverUser) {
        return new Container("tenants", "SELECT nspname FROM pg_namespace WHERE nspname = '" + serverUser + "'");
    }
}
