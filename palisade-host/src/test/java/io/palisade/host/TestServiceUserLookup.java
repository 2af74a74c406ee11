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
                "signed:x:-1:5::/:/bin/false",
                "plus:x:+7:5::/:/bin/false",
                "huge:x:4294967295:5::/:/bin/false",
                "alice:x:1000:1000:room\rmallory:x:0:0:/:/bin/sh",
                "palisade:x:1:1:a later duplicate:/:/bin/false",
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
        assertThat(ServiceUser.local("signed", passwd)).as("-1 means 'unchanged' to setpriv").isEmpty();
        assertThat(ServiceUser.local("plus", passwd)).isEmpty();
        assertThat(ServiceUser.local("huge", passwd)).isEmpty();
        assertThat(ServiceUser.local("mallory", passwd)).as("a lone CR does not end a line").isEmpty();
        assertThat(ServiceUser.local("alice", passwd).orElseThrow().uid()).isEqualTo(1000);
        assertThat(ServiceUser.local("", passwd)).isEmpty();
        assertThat(ServiceUser.local("palisade", dir.resolve("missing"))).isEmpty();
    }

    @Test
    void bytesThatAreNotUtf8DoNotHideTheOtherLines() throws Exception {
        Path passwd = dir.resolve("passwd");
        Files.write(passwd, "host:x:1001:1001:caf\u00e9\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        Files.write(passwd, "palisade:x:999:998::/nonexistent:/usr/sbin/nologin\n".getBytes(
                java.nio.charset.StandardCharsets.US_ASCII), java.nio.file.StandardOpenOption.APPEND);
        assertThat(ServiceUser.local("palisade", passwd).orElseThrow().uid()).isEqualTo(999);
        assertThat(ServiceUser.passwdEntries(passwd)).extracting(fields -> fields[0]).containsExactly("host",
                "palisade");
    }

    @Test
    void theFileIsReadOnlyWhenTheNameServiceAsksItFirst() throws Exception {
        Path nsswitch = dir.resolve("nsswitch.conf");
        Files.writeString(nsswitch, "# passwd: ldap\npasswd:         files systemd\ngroup: files\n");
        assertThat(ServiceUser.filesFirst(nsswitch)).isTrue();
        Files.writeString(nsswitch, "passwd: sss files\n");
        assertThat(ServiceUser.filesFirst(nsswitch)).isFalse();
        Files.writeString(nsswitch, "passwd: compat\n");
        assertThat(ServiceUser.filesFirst(nsswitch)).isFalse();
        Files.writeString(nsswitch, "group: files\n");
        assertThat(ServiceUser.filesFirst(nsswitch)).as("no passwd line").isFalse();
        assertThat(ServiceUser.filesFirst(dir.resolve("missing"))).isFalse();
    }

    @Test
    void agreesWithIdForTheUsersOfThisHost() {
        for (String name : List.of("root", "nobody")) {
            ServiceUser user = ServiceUser.local(name, Path.of("/etc/passwd")).orElseThrow();
            assertThat(user.uid()).as(name).isEqualTo(Integer.parseInt(
                    Processes.check(List.of("id", "-u", name), Duration.ofSeconds(5)).strip()));
            assertThat(user.gid()).as(name).isEqualTo(Integer.parseInt(
                    Processes.check(List.of("id", "-g", name), Duration.ofSeconds(5)).strip()));
        }
    }
}
