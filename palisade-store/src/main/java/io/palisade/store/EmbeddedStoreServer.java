package io.palisade.store;

import io.palisade.host.PostgresBinaries;
import io.palisade.host.PostgresServer;
import io.palisade.host.ServiceUser;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.PostgresVersion;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane's own small PostgreSQL under {@code <data-dir>/store}: created on first start, started with
 * palisade and stopped with it. Its superuser password lives in a root-only mode-600 file and is given to initdb through
 * a file, never on a command line. It runs as an OS user of its own (not the one of any tenant server): its data, log
 * and socket are private to that user, and every connection, Unix socket included, authenticates with SCRAM, so code
 * running in a tenant's server can neither read its files nor log in without the password. Not thread-safe: one owner
 * starts and closes it.
 */
public final class EmbeddedStoreServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EmbeddedStoreServer.class);

    /** Every connection authenticates with the superuser's password, on the Unix socket too. */
    static final String HBA = "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n";

    private final PostgresServer server;
    private final String password;

    private EmbeddedStoreServer(PostgresServer server, String password) {
        this.server = server;
        this.password = password;
    }

    public static EmbeddedStoreServer start(Path storeDir, Path cacheDir, ServiceUser user) {
        try {
            Files.createDirectories(storeDir);
            Path secretFile = storeDir.resolve("superuser.secret");
            Path data = storeDir.resolve("pgdata");
            PostgresBinaries binaries = PostgresBinaries.install(cacheDir, PostgresVersion.DEFAULT);
            if (!Files.exists(data.resolve("PG_VERSION"))) {
                log.info("initialising the metadata store in {}", data);
                io.palisade.host.Processes.run(List.of("rm", "-rf", data.toString()), Duration.ofMinutes(1), null);
                String secret = SecretBox.randomSecret(32);
                Files.deleteIfExists(secretFile);
                Files.createFile(secretFile, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
                Files.writeString(secretFile, secret);
                Path pwfile = storeDir.resolve(".initdb-pw");
                Files.deleteIfExists(pwfile);
                Files.createFile(pwfile, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
                Files.writeString(pwfile, secret + "\n");
                user.chown(pwfile);
                try {
                    PostgresServer.initdb(binaries, data, user, Optional.of(pwfile));
                } finally {
                    Files.deleteIfExists(pwfile);
                }
            }
            ownedBy(data, user);
            writePrivate(data.resolve("pg_hba.conf"), HBA, user);
            Path logFile = storeDir.resolve("postgres.log");
            writePrivate(logFile, null, user);
            String password = Files.readString(secretFile).strip();
            PostgresServer server = PostgresServer.start(new PostgresServer.Options(
                    binaries,
                    data,
                    "127.0.0.1",
                    PostgresServer.freePort(),
                    PostgresServer.socketDirFor("store-" + Integer.toHexString(storeDir.toAbsolutePath().hashCode())),
                    logFile,
                    user,
                    Optional.empty(),
                    Map.of("max_connections", "50", "shared_buffers", "32MB", "fsync", "on"),
                    Duration.ofSeconds(60)));
            return new EmbeddedStoreServer(server, password);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot start the metadata store: " + e.getMessage(), e);
        }
    }

    /**
     * A data directory made by an earlier palisade (when the store shared the tenant servers' user) is given to
     * {@code user}; a tree already owned by it is left alone.
     */
    private static void ownedBy(Path data, ServiceUser user) throws IOException {
        if (user.dropsPrivileges() && (Integer) Files.getAttribute(data, "unix:uid", LinkOption.NOFOLLOW_LINKS)
                != user.uid()) {
            log.info("giving the metadata store's files to its own OS user {}", user);
            user.chown(data);
        }
    }

    /**
     * Replaces {@code file} without following a link planted in its place: removed, created anew with mode 600 and
     * {@code content} (or kept empty and appended to by the server when {@code content} is null and the file exists),
     * then given to {@code user}.
     */
    private static void writePrivate(Path file, String content, ServiceUser user) throws IOException {
        if (content != null || Files.isSymbolicLink(file) || !Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            Files.deleteIfExists(file);
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            if (content != null) {
                Files.writeString(file, content, StandardOpenOption.WRITE);
            }
        } else {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        }
        if (user.dropsPrivileges()) {
            Files.setAttribute(file, "unix:uid", user.uid(), LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(file, "unix:gid", user.gid(), LinkOption.NOFOLLOW_LINKS);
        }
    }

    public String jdbcUrl() {
        return "jdbc:postgresql://" + server.endpoint() + "/postgres";
    }

    public String username() {
        return PostgresServer.ADMIN_ROLE;
    }

    public String password() {
        return password;
    }

    @Override
    public void close() {
        server.close();
    }
}
