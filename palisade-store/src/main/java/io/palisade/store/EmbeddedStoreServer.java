package io.palisade.store;

import io.palisade.host.PostgresBinaries;
import io.palisade.host.PostgresServer;
import io.palisade.host.ServiceUser;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.PostgresVersion;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane's own small PostgreSQL under {@code <data-dir>/store}: created on first start, started with
 * palisade and stopped with it. Its superuser password lives in a mode-600 file and is given to initdb through a file,
 * never on a command line. Not thread-safe: one owner starts and closes it.
 */
public final class EmbeddedStoreServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EmbeddedStoreServer.class);

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
                Files.writeString(data.resolve("pg_hba.conf"), "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n");
            }
            String password = Files.readString(secretFile).strip();
            PostgresServer server = PostgresServer.start(new PostgresServer.Options(
                    binaries,
                    data,
                    "127.0.0.1",
                    PostgresServer.freePort(),
                    PostgresServer.socketDirFor("store-" + Integer.toHexString(storeDir.toAbsolutePath().hashCode())),
                    storeDir.resolve("postgres.log"),
                    user,
                    Optional.empty(),
                    Map.of("max_connections", "50", "shared_buffers", "32MB", "fsync", "on"),
                    Duration.ofSeconds(60)));
            return new EmbeddedStoreServer(server, password);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot start the metadata store: " + e.getMessage(), e);
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
