package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The metadata store is out of a tenant server's reach: it runs as an OS user of its own, its files are private to that
 * user, and no connection to it (Unix socket or TCP) gets in without the password. The attacker here is code running as
 * the tenant servers' OS user, as after a break-out of one tenant's postmaster. Needs root (CI runs as root).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestStoreIsolation {
    private TestingPalisade palisade;
    private Path pgdata;
    private List<String> postmasterPid;
    private String tenantUid;

    @BeforeAll
    void start() throws Exception {
        if (ServiceUser.currentUid() != 0) {
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError("CI must run as root to check OS-user separation");
            }
            System.out.println("SKIPPED TestStoreIsolation: not root, so everything runs as one OS user");
            Assumptions.abort("not root");
        }
        palisade = new TestingPalisade();
        pgdata = palisade.dataDir().resolve("store/pgdata");
        postmasterPid = Files.readAllLines(pgdata.resolve("postmaster.pid"));
        tenantUid = Processes.check(List.of("id", "-u", ServiceUser.DEFAULT_NAME), Duration.ofSeconds(5)).strip();
    }

    @AfterAll
    void stop() {
        if (palisade != null) {
            palisade.close();
        }
    }

    @Test
    void storeRunsAsItsOwnUser() throws Exception {
        String status = Files.readString(Path.of("/proc", postmasterPid.getFirst().strip(), "status"));
        String storeUid = status.lines().filter(l -> l.startsWith("Uid:")).findFirst().orElseThrow().split("\\s+")[1];
        assertThat(storeUid).isNotEqualTo(tenantUid).isNotEqualTo("0");
        assertThat(Files.getAttribute(pgdata, "unix:uid").toString()).isEqualTo(storeUid);
        assertThat(Files.getPosixFilePermissions(palisade.dataDir().resolve("store/postgres.log")))
                .as("the store's log is private").hasSize(2);
    }

    @Test
    void tenantUserCannotReadTheStoreFiles() {
        Processes.Result read = asTenant(List.of("cat", pgdata.resolve("PG_VERSION").toString()));
        assertThat(read.ok()).as("reading the store's data as the tenant user: %s", read).isFalse();
        Processes.Result secret = asTenant(List.of("cat", palisade.dataDir().resolve("store/superuser.secret").toString()));
        assertThat(secret.ok()).isFalse();
        Processes.Result log = asTenant(List.of("cat", palisade.dataDir().resolve("store/postgres.log").toString()));
        assertThat(log.ok()).isFalse();
    }

    @Test
    void noConnectionWithoutThePassword() {
        String port = postmasterPid.get(3).strip();
        String socketDir = postmasterPid.get(4).strip();
        for (String host : List.of(socketDir, "127.0.0.1")) {
            // as the tenant user and as root: trust is gone everywhere, only the password opens the store
            for (boolean tenant : List.of(true, false)) {
                List<String> psql = List.of("psql", "-w", "-h", host, "-p", port, "-U", "palisade_admin", "-d",
                        "postgres", "-Atc", "select 1");
                Processes.Result result = tenant ? asTenant(psql) : Processes.run(psql, Duration.ofSeconds(20), null);
                assertThat(result.ok()).as("psql to the store at %s as %s: %s", host, tenant ? "tenant" : "root", result)
                        .isFalse();
                assertThat(result.output()).doesNotContain("\n1\n").isNotEqualTo("1");
            }
        }
    }

    private static Processes.Result asTenant(List<String> command) {
        List<String> wrapped = new ArrayList<>(ServiceUser.resolve(ServiceUser.DEFAULT_NAME).wrap(List.of()));
        wrapped.addAll(command);
        return Processes.run(wrapped, Duration.ofSeconds(20), null);
    }
}
