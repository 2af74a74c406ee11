package io.palisade.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tenant instances get OS users of their own, in palisade's uid range, removed with them. Needs root (CI is). */
class TestTenantUsers {
    private static final String PREFIX = "paltest";
    private static final java.nio.file.Path PASSWD = java.nio.file.Path.of("/etc/passwd");
    private TenantUsers users;
    private TenantUsers vmUsers;

    @BeforeEach
    void requireRoot() {
        if (ServiceUser.currentUid() != 0) {
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError("CI must run as root to create OS users");
            }
            System.out.println("SKIPPED TestTenantUsers: not root, so no OS users can be created");
            Assumptions.abort("not root");
        }
        users = new TenantUsers(ServiceUser.resolve(PREFIX));
        vmUsers = new TenantUsers(ServiceUser.resolve(PREFIX), "vm");
    }

    @AfterEach
    void cleanUp() {
        if (users != null) {
            users.remove("db-aaaa1111");
            users.remove("db-bbbb2222");
            vmUsers.remove("db-aaaa1111");
            Processes.run(List.of("userdel", PREFIX), Duration.ofSeconds(30), null);
        }
    }

    @Test
    void eachInstanceHasItsOwnUidInRange() {
        ServiceUser a = users.forInstance("db-aaaa1111");
        ServiceUser b = users.forInstance("db-bbbb2222");
        assertThat(a.name()).isEqualTo("paltest-db-aaaa1111");
        assertThat(a.uid()).isBetween(TenantUsers.UID_MIN, TenantUsers.UID_MAX).isNotEqualTo(b.uid());
        assertThat(a.gid()).isNotEqualTo(b.gid());
        assertThat(a.dropsPrivileges()).isTrue();
        assertThat(users.forInstance("db-aaaa1111").uid()).as("idempotent").isEqualTo(a.uid());
        assertThat(users.existing()).contains(a.name(), b.name());
        assertThat(ServiceUser.local(a.name(), PASSWD).orElseThrow().uid()).as("read from /etc/passwd")
                .isEqualTo(Integer.parseInt(Processes.check(List.of("id", "-u", a.name()), Duration.ofSeconds(5))
                        .strip()));
        String whoami = Processes.check(a.wrap(List.of("id", "-u")), Duration.ofSeconds(5)).strip();
        assertThat(whoami).isEqualTo(Integer.toString(a.uid()));

        users.remove("db-aaaa1111");
        users.remove("db-aaaa1111");
        assertThat(users.existing()).doesNotContain(a.name()).contains(b.name());
        assertThat(Processes.run(List.of("id", "-u", a.name()), Duration.ofSeconds(5), null).ok()).isFalse();
        assertThat(ServiceUser.local(a.name(), PASSWD)).as("gone from /etc/passwd").isEmpty();
    }

    @Test
    void refusesIdsThatCannotNameAUser() {
        assertThatThrownBy(() -> users.forInstance("../etc")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> users.forInstance("db-" + "x".repeat(30))).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void removingAUserEndsItsProcessesAndLeftoversAndItsUidIsNotGivenAgain() throws Exception {
        ServiceUser a = users.forInstance("db-aaaa1111");
        Process lingering = new ProcessBuilder(a.wrap(List.of("sleep", "300"))).start();
        java.nio.file.Path leftover = java.nio.file.Path.of("/tmp", "paltest-leftover-" + a.uid());
        Processes.check(a.wrap(List.of("touch", leftover.toString())), Duration.ofSeconds(5));
        assertThat(leftover).exists();

        users.remove("db-aaaa1111");
        assertThat(lingering.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)).as("killed with its user").isTrue();
        assertThat(leftover).doesNotExist();
        ServiceUser b = users.forInstance("db-bbbb2222");
        assertThat(b.uid()).as("a new user never gets a uid given before").isGreaterThan(a.uid());
    }

    /**
     * A move runs a database's server process and its VM side by side under one instance id: removing the one user
     * (which kills whatever runs as it) must leave the other's processes alone. The regression: a process → vm move
     * killed the new VM's QEMU when it removed the source's user.
     */
    @Test
    void anotherKindOfInstanceWithTheSameIdHasAUserOfItsOwn() throws Exception {
        ServiceUser server = users.forInstance("db-aaaa1111");
        ServiceUser vm = vmUsers.forInstance("db-aaaa1111");
        assertThat(vm.name()).isEqualTo("paltest-vm-db-aaaa1111");
        assertThat(vm.uid()).isBetween(TenantUsers.UID_MIN, TenantUsers.UID_MAX).isNotEqualTo(server.uid());
        Process qemu = new ProcessBuilder(vm.wrap(List.of("sleep", "300"))).start();
        try {
            users.remove("db-aaaa1111");
            assertThat(qemu.waitFor(1, java.util.concurrent.TimeUnit.SECONDS)).as("the VM's process lives on").isFalse();
            assertThat(vmUsers.existing()).contains(vm.name());
            vmUsers.remove("db-aaaa1111");
            assertThat(qemu.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)).as("killed with its own user").isTrue();
        } finally {
            qemu.destroyForcibly();
        }
        assertThatThrownBy(() -> new TenantUsers(ServiceUser.resolve(PREFIX), "VM/x"))
                .isInstanceOf(IllegalArgumentException.class);
    }

    /**
     * A microVM started by an earlier palisade ran as the tenant server's user: removing that user (a move's process
     * instance going) leaves the user and the VM alone.
     */
    @Test
    void aMicroVmOfAnEarlierPalisadeKeepsItsUserAndRuns() throws Exception {
        ServiceUser server = users.forInstance("db-aaaa1111");
        Process qemu = new ProcessBuilder(server.wrap(List.of("bash", "-c", "exec -a qemu-system-x86_64 sleep 300")))
                .start();
        try {
            org.awaitility.Awaitility.await("the stand-in QEMU").atMost(Duration.ofSeconds(10))
                    .until(() -> Processes.run(List.of("pgrep", "-U", Integer.toString(server.uid()), "-f",
                            "qemu-system"), Duration.ofSeconds(5), null).ok());
            users.remove("db-aaaa1111");
            assertThat(qemu.waitFor(1, java.util.concurrent.TimeUnit.SECONDS)).as("the VM lives on").isFalse();
            assertThat(users.existing()).contains(server.name());
        } finally {
            qemu.destroyForcibly();
            qemu.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
        }
        users.remove("db-aaaa1111");
        assertThat(users.existing()).doesNotContain(server.name());
    }

    @Test
    void hardLinksCountAsProtectedOnlyWhenTheKernelSaysOne(@TempDir Path dir) throws Exception {
        assertThat(TenantUsers.hardLinksProtected(Files.writeString(dir.resolve("on"), "1\n"))).isTrue();
        assertThat(TenantUsers.hardLinksProtected(Files.writeString(dir.resolve("off"), "0\n"))).isFalse();
        assertThat(TenantUsers.hardLinksProtected(dir.resolve("missing"))).isFalse();
    }

    @Test
    void fuseLetsOthersInOnlyWhenUserAllowOtherIsSet(@TempDir Path dir) throws Exception {
        assertThat(TenantUsers.fuseAllowsOthers(Files.writeString(dir.resolve("on"),
                "# mount_max = 1000\n  user_allow_other  \n"))).isTrue();
        assertThat(TenantUsers.fuseAllowsOthers(Files.writeString(dir.resolve("commented"),
                "#user_allow_other\n# user_allow_other\n"))).isFalse();
        assertThat(TenantUsers.fuseAllowsOthers(Files.writeString(dir.resolve("debian-default"),
                "# /etc/fuse.conf - Configuration file for Filesystem in Userspace (FUSE)\n"
                        + "#mount_max = 1000\n#user_allow_other\n"))).isFalse();
        assertThat(TenantUsers.fuseAllowsOthers(dir.resolve("missing"))).isFalse();
    }
}
