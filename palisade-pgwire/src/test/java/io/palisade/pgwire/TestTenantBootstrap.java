package io.palisade.pgwire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class TestTenantBootstrap {
    @Test
    void rolesNeverGetPowersAndNamesAreQuoted() {
        assertThat(TenantBootstrap.createRole("app"))
                .isEqualTo("CREATE ROLE \"app\" LOGIN NOCREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS");
        assertThat(TenantBootstrap.createRole("a\"; DROP ROLE x; --"))
                .startsWith("CREATE ROLE \"a\"\"; DROP ROLE x; --\" LOGIN");
        assertThat(TenantBootstrap.stripPowers("app"))
                .isEqualTo("ALTER ROLE \"app\" NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS");
        assertThat(TenantBootstrap.createDatabase("app", "o\"wner"))
                .isEqualTo("CREATE DATABASE \"app\" OWNER \"o\"\"wner\"");
    }

    @Test
    void passwordsGoAsVerifiersOnly() {
        String sql = TenantBootstrap.setPassword("app", "s3cret'pw");
        assertThat(sql).startsWith("ALTER ROLE \"app\" PASSWORD 'SCRAM-SHA-256$4096:").doesNotContain("s3cret");
        String shared = TenantBootstrap.createSharedRole("tenant_x", 20, "pw");
        assertThat(shared).contains(" NOINHERIT CONNECTION LIMIT 20 PASSWORD 'SCRAM-SHA-256$4096:")
                .contains("NOSUPERUSER").doesNotContain("'pw'");
        assertThatThrownBy(() -> TenantBootstrap.createSharedRole("t", 0, "pw"))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
