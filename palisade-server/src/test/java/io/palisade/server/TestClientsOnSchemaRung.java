package io.palisade.server;

class TestClientsOnSchemaRung extends AbstractTestClientsThroughPalisade {
    @Override
    protected String isolation() {
        return "schema";
    }
}
