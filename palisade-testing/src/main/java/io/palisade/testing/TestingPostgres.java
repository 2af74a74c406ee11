package io.palisade.testing;

import io.palisade.host.PostgresBinaries;
import io.palisade.host.PostgresServer;
import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import io.palisade.pgwire.ScramVerifier;
import io.palisade.spi.AdminAccess;
import io.palisade.spi.Endpoint;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.TenantCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A real PostgreSQL server for tests: its own data directory, a random loopback port, a non-superuser tenant role
 * {@code app} that owns database {@code app} with a random SCRAM password. The superuser {@link #adminUser()} logs in
 * with trust on the private Unix socket ({@link #socketFile()}) and with SCRAM on TCP, for queries and for physical
 * replication. Start is bounded and fails with the log tail; close is idempotent and removes every file. Not
 * thread-safe for concurrent close.
 */
public final class TestingPostgres implements AutoCloseable {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Path workDir;
    private final PostgresServer server;
    private final TenantCredentials credentials;
    private final String adminPassword;

    public TestingPostgres() {
        this(PostgresVersion.DEFAULT, Map.of());
    }

    public TestingPostgres(PostgresVersion version, Map<String, String> settings) {
        Path dir = TestingDirectories.newWorkDir("pg");
        PostgresServer started = null;
        try {
            ServiceUser user = TestingDirectories.serviceUser();
            PostgresBinaries binaries = PostgresBinaries.install(TestingDirectories.cacheDir(), version);
            Path data = dir.resolve("data");
            PostgresServer.initdb(binaries, data, user);
            this.adminPassword = randomSecret();
            this.credentials = new TenantCredentials("app", "app", randomSecret());
            Files.writeString(
                    data.resolve("pg_hba.conf"),
                    """
                    local all all trust
                    local replication all trust
                    host all all 127.0.0.1/32 scram-sha-256
                    host all all ::1/128 scram-sha-256
                    host replication all 127.0.0.1/32 scram-sha-256
                    host replication all ::1/128 scram-sha-256
                    """);
            started = PostgresServer.start(new PostgresServer.Options(
                    binaries,
                    data,
                    "127.0.0.1",
                    PostgresServer.freePort(),
                    dir.resolve("run"),
                    dir.resolve("postgres.log"),
                    user,
                    Optional.empty(),
                    settings,
                    Duration.ofSeconds(60)));
            this.server = started;
            setUp();
            this.workDir = dir;
        } catch (RuntimeException | IOException e) {
            if (started != null) {
                started.close();
            }
            TestingDirectories.deleteRecursively(dir);
            if (e instanceof IOException io) {
                throw new UncheckedIOException(io);
            }
            throw (RuntimeException) e;
        }
    }

    private void setUp() {
        // bootstrap over the private Unix socket is not reachable from PgJDBC without a socket factory, so give the
        // admin role a password once through single-statement psql-free path: ALTER via a TCP connection needs a
        // password first, hence the one-off trust line for the admin on loopback, removed right after.
        Path hba = server.options().dataDir().resolve("pg_hba.conf");
        try {
            String secure = Files.readString(hba);
            Files.writeString(hba, "host all " + PostgresServer.ADMIN_ROLE + " 127.0.0.1/32 trust\n" + secure);
            reload();
            try (Connection c = DriverManager.getConnection(
                            "jdbc:postgresql://" + server.endpoint() + "/postgres", PostgresServer.ADMIN_ROLE, "");
                    Statement s = c.createStatement()) {
                s.execute("ALTER ROLE " + PostgresServer.ADMIN_ROLE + " PASSWORD '" + ScramVerifier.of(adminPassword) + "'");
                s.execute("CREATE ROLE " + credentials.username() + " LOGIN NOSUPERUSER NOCREATEROLE PASSWORD '"
                        + ScramVerifier.of(credentials.password()) + "'");
                s.execute("CREATE DATABASE " + credentials.database() + " OWNER " + credentials.username());
            }
            Files.writeString(hba, secure);
            reload();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (SQLException e) {
            throw new IllegalStateException("cannot set up test server: " + e.getMessage(), e);
        }
    }

    private void reload() {
        Processes.signal(server.pid(), "HUP");
        Processes.sleep(Duration.ofMillis(300));
    }

    public Endpoint endpoint() {
        return server.endpoint();
    }

    public TenantCredentials credentials() {
        return credentials;
    }

    public String jdbcUrl() {
        return "jdbc:postgresql://" + server.endpoint() + "/" + credentials.database();
    }

    /** A connection as the tenant role. */
    public Connection connect() throws SQLException {
        return DriverManager.getConnection(jdbcUrl(), credentials.username(), credentials.password());
    }

    /** A connection as the superuser (for test set-up only). */
    public Connection connectAsAdmin() throws SQLException {
        return DriverManager.getConnection(jdbcUrl(), PostgresServer.ADMIN_ROLE, adminPassword);
    }

    /** The superuser palisade manages servers as. */
    public String adminUser() {
        return PostgresServer.ADMIN_ROLE;
    }

    /** The superuser's password (needed on TCP; the Unix socket trusts it). */
    public String adminPassword() {
        return adminPassword;
    }

    /** The server's Unix socket file ({@code <dir>/.s.PGSQL.<port>}), where local connections are trusted. */
    public Path socketFile() {
        return server.socketFile();
    }

    /** Management access as the superuser over the Unix socket (trust, no password). */
    public AdminAccess adminAccess() {
        return new AdminAccess(new AdminAccess.UnixSocket(socketFile()), adminUser(), Optional.empty());
    }

    /** Management access as the superuser over TCP (SCRAM). */
    public AdminAccess adminAccessTcp() {
        return new AdminAccess(new AdminAccess.Tcp(endpoint()), adminUser(), Optional.of(adminPassword));
    }

    public Path dataDir() {
        return server.options().dataDir();
    }

    /**
     * Puts {@code lines} at the top of {@code pg_hba.conf} (first match wins) and reloads the server, e.g. to try
     * another authentication method for one role.
     */
    public void prependHba(String lines) {
        Path hba = dataDir().resolve("pg_hba.conf");
        try {
            Files.writeString(hba, lines + (lines.endsWith("\n") ? "" : "\n") + Files.readString(hba));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        reload();
    }

    public long pid() {
        return server.pid();
    }

    public Path logFile() {
        return server.options().logFile();
    }

    @Override
    public void close() {
        server.close();
        TestingDirectories.deleteRecursively(workDir);
    }

    static String randomSecret() {
        byte[] bytes = new byte[18];
        RANDOM.nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }

}
