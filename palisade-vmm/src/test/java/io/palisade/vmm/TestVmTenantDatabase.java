package io.palisade.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.testing.TestingPostgres;
import java.sql.Connection;
import java.sql.Statement;
import org.junit.jupiter.api.Test;

/**
 * How a move finds the tenant's database inside a VM's server ({@link VmMoveAccess#tenant}), on a real PostgreSQL
 * laid out as a guest's (no VM needed): a second database the tenant made through the broker's {@code v1/databases}
 * stops the move, even when the tenant, its owner, flagged it {@code IS_TEMPLATE} to hide it.
 */
class TestVmTenantDatabase {
    @Test
    void aDatabaseTheTenantFlaggedAsTemplateStillCounts() throws Exception {
        try (TestingPostgres postgres = new TestingPostgres();
                Connection admin = postgres.connectAsAdmin()) {
            assertThat(VmMoveAccess.tenant(admin, "vm-one").database()).isEqualTo("app");
            try (Statement s = admin.createStatement()) {
                s.execute("CREATE DATABASE analytics OWNER app"); // as the broker's v1/databases makes it
            }
            try (Connection tenant = postgres.connect(); Statement s = tenant.createStatement()) {
                s.execute("ALTER DATABASE analytics IS_TEMPLATE true"); // the tenant owns it: allowed
            }
            assertThatThrownBy(() -> VmMoveAccess.tenant(admin, "vm-one"))
                    .isInstanceOfSatisfying(PalisadeException.class,
                            e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CONFLICT))
                    .hasMessageContaining("analytics");
        }
    }
}
