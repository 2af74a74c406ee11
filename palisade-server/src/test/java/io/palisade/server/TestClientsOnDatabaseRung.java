package io.palisade.server;

class TestClientsOnDatabaseRung extends AbstractTestClientsThroughPalisade {
    @Override
    protected String isolation() {
        return "database";
    }
}
