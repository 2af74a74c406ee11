package io.palisade.server;

class TestClientsThroughPalisade extends AbstractTestClientsThroughPalisade {
    @Override
    protected String isolation() {
        return "process";
    }
}
