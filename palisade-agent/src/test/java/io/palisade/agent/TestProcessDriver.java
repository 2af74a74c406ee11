package io.palisade.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.host.Cgroups;
import io.palisade.host.PostgresServer;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import io.palisade.spi.RunningInstance;
import io.palisade.spi.TenantCredentials;
import io.palisade.testing.AbstractTestIsolationDriver;
import io.palisade.testing.TestingDirectories;
import org.junit.jupiter.api.Test;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;

class TestProcessDriver extends AbstractTestIsolationDriver {
    private Path workDir;
    private Cgroups cgroups;

    @Override
    protected IsolationDriver createDriver() {
        workDir = TestingDirectories.newWorkDir("process-driver");
        cgroups = Cgroups.detect("palisade-test");
        return new ProcessDriver(new ProcessDriverConfig(
                workDir.resolve("instances"),
                TestingDirectories.cacheDir(),
                TestingDirectories.serviceUser(),
                cgroups,
                Duration.ofSeconds(60)));
    }

    @Override
    protected void assertNothingLeft(String id) {
        assertThat(workDir.resolve("instances").resolve(id)).doesNotExist();
        assertThat(PostgresServer.socketDirFor(id)).doesNotExist();
        assertThat(cgroups.find(ProcessDriver.cgroupPrefix(workDir.resolve("instances")) + id)).isEmpty();
        assertThat(ProcessHandle.allProcesses()
                        .filter(p -> p.info().commandLine().orElse("").contains(id))
                        .toList())
                .as("processes mentioning %s", id)
                .isEmpty();
    }

    @Override
    protected void cleanUp() {
        TestingDirectories.deleteRecursively(workDir);
        assertThat(Files.exists(workDir)).isFalse();
    }

    @Test
    void settingThePasswordTakesHostReachingPowersFromACatalog() throws Exception {
        String id = newId();
        TenantCredentials credentials = newCredentials();
        RunningInstance instance = driver().provision(new InstanceSpec(id, PostgresVersion.DEFAULT, plan(), "app",
                "app"), credentials, ProgressListener.NONE);
        // what a catalog palisade did not write could hold: another superuser, and host-reaching memberships
        try (Connection admin = AdminConnection.open(driver().adminAccess(id), "postgres");
                Statement s = admin.createStatement()) {
            s.execute("CREATE ROLE evil LOGIN SUPERUSER PASSWORD 'evil-password'");
            s.execute("SET ROLE evil");
            s.execute("GRANT pg_execute_server_program, pg_read_server_files TO app");
            s.execute("RESET ROLE");
        }
        driver().setPassword(id, "app", credentials.password());
        try (Connection admin = AdminConnection.open(driver().adminAccess(id), "postgres");
                Statement s = admin.createStatement();
                ResultSet rs = s.executeQuery("SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = 'evil'),"
                        + " pg_has_role('app', 'pg_execute_server_program', 'MEMBER'),"
                        + " pg_has_role('app', 'pg_read_server_files', 'MEMBER')")) {
            assertThat(rs.next()).isTrue();
            assertThat(rs.getBoolean(1)).as("evil is still a superuser").isFalse();
            assertThat(rs.getBoolean(2)).as("app may run programs on the host").isFalse();
            assertThat(rs.getBoolean(3)).as("app may read the host's files").isFalse();
        }
        try (Connection tenant = connect(instance, credentials, credentials.password());
                Statement s = tenant.createStatement()) {
            assertThatThrownBy(() -> s.execute("COPY (SELECT 1) TO PROGRAM 'id'"))
                    .isInstanceOfSatisfying(SQLException.class, e -> assertThat(e.getSQLState()).isEqualTo("42501"));
        }
        driver().destroy(id);
    }
}
