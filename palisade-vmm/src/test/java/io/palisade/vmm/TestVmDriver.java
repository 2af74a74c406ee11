package io.palisade.vmm;

import io.palisade.spi.IsolationDriver;

/** The isolation-driver contract against real QEMU microVMs (TCG in CI). */
class TestVmDriver extends io.palisade.testing.AbstractTestIsolationDriver {
    @Override
    protected IsolationDriver createDriver() {
        return TestingVm.newDriver("10.214.1.0/24");
    }

    @Override
    protected void assertNothingLeft(String id) {
        TestingVm.assertNothingLeft((VmDriver) driver(), id);
    }

    @Override
    protected void cleanUp() {
        // the instances dir holds the template snapshot (~200 MiB) besides the slots
        io.palisade.testing.TestingDirectories.deleteRecursively(((VmDriver) driver()).config().instancesDir());
    }
}
