package io.palisade.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Users read from a passwd file without starting {@code id}: the exact name only, and what {@code id} says. */
class TestServiceUserLookup {
    @TempDir
    Path dir;

    @Test
    void findsOnlyTheExactName() throws Exception {
        Path passwd = dir.resolve("passwd");
        Files.writeString(passwd, String.join("\n",
                "root:x:0:0:root:/root:/bin/bash",
                "palisade-db-abc:x:3000001:3000001::/nonexistent:/usr/sbin/nologin",
                "palisade:x:999:998::/nonexistent:/usr/sbin/nologin",
                "broken:x:notanumber:1::/:/bin/false",
                "short:x:5",
                ""));
        ServiceUser user = ServiceUser.local("palisade", passwd).orElseThrow();
        assertThat(user.uid()).isEqualTo(999);
        assertThat(user.gid()).isEqualTo(998);
        assertThat(user.dropsPrivileges()).isTrue();
        assertThat(ServiceUser.local("palisade-db-abc", passwd).orElseThrow().uid()).isEqualTo(3000001);
        assertThat(ServiceUser.local("palisade-db", passwd)).as("a prefix of a name").isEmpty();
        assertThat(ServiceUser.local("palisad", passwd)).isEmpty();
        assertThat(ServiceUser.local("broken", passwd)).as("a uid that is not a number").isEmpty();
        assertThat(ServiceUser.local("short", passwd)).as("a line without a gid").isEmpty();
        assertThat(ServiceUser.local("palisade:x", passwd)).as("a name with the separator").isEmpty();
        assertThat(ServiceUser.local("", passwd)).isEmpty();
        assertThat(ServiceUser.local("palisade", dir.resolve("missing"))).isEmpty();
    }

    @Test
    void agreesWithIdForTheUsersOfThisHost() {
        for (String name : List.of("root", "nobody")) {
            ServiceUser user = ServiceUser.local(name).orElseThrow();
            assertThat(user.uid()).as(name).isEqualTo(Integer.parseInt(
                    Processes.check(List.of("id", "-u", name), Duration.ofSeconds(5)).strip()));
            assertThat(user.gid()).as(name).isEqualTo(Integer.parseInt(
                    Processes.check(List.of("id", "-g", name), Duration.ofSeconds(5)).strip()));
        }
    }
}
