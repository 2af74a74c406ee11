package io.palisade.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import org.junit.jupiter.api.Test;

class TestTestingPostgres {
    @Test
    void tenantRoleOwnsItsDatabaseButIsNoSuperuser() throws Exception {
        Path dataDir;
        long pid;
        try (TestingPostgres postgres = new TestingPostgres();
                Connection connection = postgres.connect();
                Statement statement = connection.createStatement()) {
            statement.execute("CREATE TABLE t (x int)");
            try (ResultSet rs = statement.executeQuery("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getBoolean(1)).isFalse();
            }
            assertThatThrownBy(() -> java.sql.DriverManager.getConnection(
                            postgres.jdbcUrl(), postgres.credentials().username(), "wrong"))
                    .isInstanceOf(SQLException.class)
                    .hasMessageContaining("password authentication failed");
            dataDir = postgres.logFile().getParent();
            pid = postgres.pid();
        }
        assertThat(Files.exists(dataDir)).isFalse();
        assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)).isFalse();
    }
}
