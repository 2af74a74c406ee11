package io.palisade.host;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.spi.PostgresVersion;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A real postmaster started by {@link PostgresServer}: what it inherits and which files root opens for it. */
class PostgresServerIsolationTest {
    private Path dir;

    @BeforeEach
    void createDir() throws IOException {
        Path base = repoDir().resolve("target/test-work");
        Files.createDirectories(base);
        dir = Files.createTempDirectory(base, "iso-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @AfterEach
    void deleteDir() {
        Processes.run(List.of("rm", "-rf", dir.toString()), Duration.ofMinutes(1), null);
    }

    @Test
    void thePostmasterInheritsNoSecretAndRootDoesNotFollowItsLogLink() throws IOException {
        ServiceUser user = ServiceUser.resolve(ServiceUser.DEFAULT_NAME);
        PostgresBinaries binaries = PostgresBinaries.install(repoDir().resolve("target/test-cache"),
                PostgresVersion.DEFAULT);
        Path data = dir.resolve("data");
        PostgresServer.initdb(binaries, data, user);
        // what a tenant with the service user's rights plants: its log is a link to a file only root may write
        Path rootOnly = Files.writeString(dir.resolve("root-only"), "root's file\n");
        Files.setPosixFilePermissions(rootOnly, PosixFilePermissions.fromString("rw-------"));
        Path log = Files.createSymbolicLink(dir.resolve("postgres.log"), rootOnly);

        try (PostgresServer server = PostgresServer.start(new PostgresServer.Options(binaries, data, "127.0.0.1",
                PostgresServer.freePort(), dir.resolve("run"), log, user, Optional.empty(), Map.of(),
                Duration.ofSeconds(60)))) {
            byte[] environ = Files.readAllBytes(Path.of("/proc", Long.toString(server.pid()), "environ"));
            Set<String> keys = Arrays.stream(new String(environ, StandardCharsets.UTF_8).split("\0"))
                    .filter(entry -> !entry.isEmpty())
                    .map(entry -> entry.substring(0, entry.indexOf('=')))
                    .collect(Collectors.toSet());

            assertThat(System.getenv("PALISADE_TEST_SECRET")).isNotNull();
            assertThat(keys).noneMatch(key -> key.startsWith("PALISADE_"));
            assertThat(keys).allMatch(key -> Processes.INHERITED_ENVIRONMENT.contains(key)
                    || Set.of("LANG", "LC_ALL", "LD_LIBRARY_PATH", "PWD").contains(key)); // PWD: set by sh
            assertThat(Files.readString(rootOnly)).isEqualTo("root's file\n");
            assertThat(Files.isRegularFile(log, LinkOption.NOFOLLOW_LINKS)).isTrue();
            assertThat(SafeFiles.tailLines(log, 50, 64 * 1024)).anyMatch(line -> line.contains("ready to accept"));
        }
    }

    @Test
    void aForgedPidFileDoesNotStopAnotherServer() throws IOException {
        Path data = dir.resolve("data");
        try (PostgresServer victim = initdbAndStart(data)) {
            Path other = Files.createDirectories(dir.resolve("other"));
            Files.writeString(other.resolve("postmaster.pid"), victim.pid() + "\n" + data + "\n");

            PostgresServer.stopLeftover(other);

            assertThat(victim.isAlive()).isTrue();
            assertThat(PostgresServer.isPostgresOn(victim.pid(), data)).isTrue();
            assertThat(PostgresServer.isPostgresOn(victim.pid(), other)).isFalse();
        }
    }

    @Test
    void thePostmasterRunsInASessionOfItsOwnSoATerminalsSignalsMissIt() throws IOException {
        Path data = dir.resolve("data");
        try (PostgresServer server = initdbAndStart(data)) {
            long own = ProcessHandle.current().pid();

            assertThat(PostgresServer.isPostgresOn(server.pid(), data)).isTrue(); // setsid did not fork
            assertThat(sessionAndGroup(server.pid())).containsExactly(server.pid(), server.pid());
            assertThat(sessionAndGroup(server.pid())).doesNotContainAnyElementsOf(sessionAndGroup(own));
        }
    }

    @Test
    void aServerLeftRunningIsTakenOverOnlyWithTheSameCommandLine() throws IOException {
        Path data = dir.resolve("data");
        PostgresServer first = initdbAndStart(data);
        try {
            PostgresServer.Options options = first.options();

            assertThat(PostgresServer.adopt(withSettings(options, Map.of("work_mem", "8MB"))))
                    .as("another setting (a resize): started anew, not taken over").isEmpty();
            assertThat(PostgresServer.adopt(new PostgresServer.Options(options.binaries(), options.dataDir(),
                    options.listenAddress(), PostgresServer.freePort(), options.socketDir(), options.logFile(),
                    options.user(), options.cgroup(), options.settings(), options.startTimeout())))
                    .as("another port").isEmpty();

            PostgresServer taken = PostgresServer.adopt(options).orElseThrow();
            assertThat(taken.pid()).isEqualTo(first.pid());
            assertThat(taken.isAlive()).isTrue();
            assertThat(taken.startedAt()).isBetween(first.startedAt().minusSeconds(2), first.startedAt().plusSeconds(2));
            assertThat(PgProbe.isReady(taken.endpoint(), Duration.ofSeconds(2))).isTrue();

            taken.close(); // not this JVM's child: stopped through its pid
            assertThat(first.isAlive()).as("the same postmaster, stopped").isFalse();
            assertThat(PostgresServer.adopt(options)).as("nothing left to take over").isEmpty();
        } finally {
            first.close();
        }
    }

    @Test
    void aForgedPidFileIsNotTakenOver() throws Exception {
        try (PostgresServer real = initdbAndStart(dir.resolve("data"))) {
            // a program that calls itself postgres but is not the binary
            Path postgres = real.options().binaries().bin("postgres");
            Process impostor = new ProcessBuilder("bash", "-c", "exec -a \"$0\" sleep 60", postgres.toString()).start();
            try {
                assertNotTakenOverAs(real, Long.toString(impostor.pid()), "a pid that runs another executable");
                assertThat(RunningPostmaster.sameFile(Path.of("/proc", Long.toString(impostor.pid()), "exe"), postgres))
                        .isFalse();
                assertThat(RunningPostmaster.sameFile(Path.of("/proc", Long.toString(real.pid()), "exe"), postgres))
                        .isTrue();
                assertNotTakenOverAs(real, "not a pid", "garbage");
            } finally {
                impostor.destroyForcibly().waitFor();
            }
        }
    }

    /**
     * A decoy: the real binary with the exact command line, working directory, user and namespaces of the server, kept
     * alive but idle (it blocks opening a FIFO put in place of {@code postgresql.conf} while it starts, before it
     * would find the data directory locked). Only the listening socket tells it from the postmaster.
     */
    @Test
    void anIdleLookAlikeOfThePostmasterIsNotTakenOver() throws Exception {
        Path data = dir.resolve("data");
        try (PostgresServer real = initdbAndStart(data)) {
            PostgresServer.Options options = real.options();
            Path conf = data.resolve("postgresql.conf");
            Path kept = data.resolve("postgresql.conf.kept");
            Files.move(conf, kept);
            Processes.check(List.of("mkfifo", "-m", "644", conf.toString()), Duration.ofSeconds(10));
            options.user().chown(conf);
            List<String> command = PostgresServer.postgresCommand(options);
            ProcessBuilder builder = new ProcessBuilder(options.user().wrap(command)).directory(data.toFile())
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD);
            builder.environment().put("LD_LIBRARY_PATH", options.binaries().home().resolve("lib").toString());
            Process decoy = builder.start();
            try {
                Path proc = Path.of("/proc", Long.toString(decoy.pid()));
                // blocked in open(2) of the FIFO: the kernel's wait for a writer, or (without wchan) the syscall
                org.awaitility.Awaitility.await("the decoy blocks on the FIFO").atMost(Duration.ofSeconds(20))
                        .until(() -> RunningPostmaster.commandLine(decoy.pid()).equals(command)
                                && (Files.readString(proc.resolve("wchan")).equals("wait_for_partner")
                                        || Files.readString(proc.resolve("syscall")).startsWith("257 ")));
                Files.delete(conf); // the decoy keeps waiting on the FIFO it opens; the server gets its file back
                Files.move(kept, conf);

                // everything else matches: binary, command line, working directory, user, namespaces
                assertThat(RunningPostmaster.sameFile(proc.resolve("exe"), options.binaries().bin("postgres")))
                        .isTrue();
                assertThat(RunningPostmaster.sameFile(proc.resolve("cwd"), data)).isTrue();
                assertThat(decoy.isAlive()).isTrue();
                String address = options.listenAddress();
                assertThat(RunningPostmaster.holdsListeningSocket(proc, address, options.port())).isFalse();
                Path postmaster = Path.of("/proc", Long.toString(real.pid()));
                assertThat(RunningPostmaster.holdsListeningSocket(postmaster, address, options.port()))
                        .as("the postmaster itself").isTrue();
                assertThat(RunningPostmaster.holdsListeningSocket(postmaster, address, PostgresServer.freePort()))
                        .as("another port").isFalse();
                assertNotTakenOverAs(real, Long.toString(decoy.pid()), "the decoy");
                // the pid PostgreSQL checks is the one at the head: a decoy's pid further down is not read
                String genuine = Files.readString(data.resolve("postmaster.pid"));
                try {
                    Files.writeString(data.resolve("postmaster.pid"), genuine + "x".repeat(5000) + "\n" + decoy.pid());
                    assertThat(RunningPostmaster.pidInFile(data)).hasValue(real.pid());
                } finally {
                    Files.writeString(data.resolve("postmaster.pid"), genuine);
                }
            } finally {
                decoy.destroyForcibly().waitFor();
                if (Files.exists(kept)) {
                    Files.deleteIfExists(conf);
                    Files.move(kept, conf);
                }
            }
        }
    }

    /**
     * A socket on the same port at another address (anyone may bind 127.0.0.2:port beside the server's 127.0.0.1:port)
     * is not the server's listening socket.
     */
    @Test
    void onlyTheListeningSocketAtTheServersAddressCounts() throws Exception {
        try (PostgresServer real = initdbAndStart(dir.resolve("data"));
                java.net.ServerSocket beside = new java.net.ServerSocket(real.options().port(), 1,
                        java.net.InetAddress.ofLiteral("127.0.0.2"))) {
            Path self = Path.of("/proc/self");
            int port = real.options().port();
            assertThat(RunningPostmaster.holdsListeningSocket(self, "127.0.0.1", port)).isFalse();
            assertThat(RunningPostmaster.holdsListeningSocket(self, "127.0.0.2", port)).isTrue();
            assertThat(RunningPostmaster.holdsListeningSocket(self, "127.0.0.1, 127.0.0.2", port)).isTrue();
            assertThat(RunningPostmaster.holdsListeningSocket(self, "*", port)).as("not the wildcard").isFalse();
            assertThat(RunningPostmaster.holdsListeningSocket(self, "localhost", port)).as("a host name").isFalse();
            Path postmaster = Path.of("/proc", Long.toString(real.pid()));
            assertThat(RunningPostmaster.holdsListeningSocket(postmaster, "127.0.0.1", port)).isTrue();
            assertThat(RunningPostmaster.holdsListeningSocket(postmaster, "127.0.0.2", port)).isFalse();
            assertThat(RunningPostmaster.procNetAddress(new byte[] {127, 0, 0, 1})).isEqualTo("0100007F");
        }
    }

    /**
     * Puts {@code pid} in place of the pid on the first line of the server's {@code postmaster.pid}, checks that the
     * server is not taken over then, and that it is once the genuine file is back.
     */
    private static void assertNotTakenOverAs(PostgresServer real, String pid, String what) throws IOException {
        Path pidFile = real.options().dataDir().resolve("postmaster.pid");
        String genuine = Files.readString(pidFile);
        try {
            Files.writeString(pidFile, genuine.replaceFirst("^\\d+", pid));
            assertThat(PostgresServer.adopt(real.options())).as(what).isEmpty();
        } finally {
            Files.writeString(pidFile, genuine);
        }
        assertThat(PostgresServer.adopt(real.options())).as("the genuine file again").isPresent();
    }

    private static PostgresServer.Options withSettings(PostgresServer.Options options, Map<String, String> settings) {
        return new PostgresServer.Options(options.binaries(), options.dataDir(), options.listenAddress(),
                options.port(), options.socketDir(), options.logFile(), options.user(), options.cgroup(), settings,
                options.startTimeout());
    }

    /** A new data directory at {@code data} and a postmaster on it (service user, free port, log beside it). */
    private PostgresServer initdbAndStart(Path data) {
        ServiceUser user = ServiceUser.resolve(ServiceUser.DEFAULT_NAME);
        PostgresBinaries binaries = PostgresBinaries.install(repoDir().resolve("target/test-cache"),
                PostgresVersion.DEFAULT);
        PostgresServer.initdb(binaries, data, user);
        return PostgresServer.start(new PostgresServer.Options(binaries, data, "127.0.0.1", PostgresServer.freePort(),
                dir.resolve("run"), dir.resolve("postgres.log"), user, Optional.empty(), Map.of(),
                Duration.ofSeconds(60)));
    }

    /** The session id and the process group id of {@code pid}, from {@code /proc/<pid>/stat}. */
    private static List<Long> sessionAndGroup(long pid) throws IOException {
        String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        // after the command name in parentheses: state, ppid, pgrp, session
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return List.of(Long.parseLong(fields[3]), Long.parseLong(fields[2]));
    }

    private static Path repoDir() {
        return Path.of(System.getProperty("palisade.repo.dir", "..")).toAbsolutePath().normalize();
    }
}
