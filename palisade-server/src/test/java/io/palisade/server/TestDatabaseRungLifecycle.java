package io.palisade.server;

/** The shared-rung lifecycle on the {@code database} rung: each tenant has a database of its own on a shared server. */
class TestDatabaseRungLifecycle extends AbstractTestSharedRungLifecycle {
    @Override
    protected String isolation() {
        return "database";
    }

    @Override
    protected Container container(String serverUser) {
        return new Container("postgres", "SELECT datname FROM pg_database WHERE datname = '" + serverUser + "'");
    }
}
