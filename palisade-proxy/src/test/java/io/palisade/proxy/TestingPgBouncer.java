package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.palisade.host.ServiceUser;
import io.palisade.spi.Endpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A PgBouncer (the Debian {@code pgbouncer} package) in front of one PostgreSQL database, in the proxy's position: TLS
 * to the client with the given certificate, session pooling, SCRAM logins, plaintext TCP to the backend. Runs as the
 * service user when started as root (PgBouncer refuses root). For benchmarks only; {@link #close()} stops it.
 * Not thread-safe.
 */
final class TestingPgBouncer implements AutoCloseable {
    /** Debian installs it under /usr/sbin, which a non-root PATH may lack. */
    private static final String BINARY = Files.isExecutable(Path.of("/usr/sbin/pgbouncer"))
            ? "/usr/sbin/pgbouncer" : "pgbouncer";

    private final Process process;
    private final int port;
    private final Path logFile;

    /**
     * @param dir an empty directory for the configuration, the key copy and the log
     * @param backend the PostgreSQL server; database {@code database} there is served under the same name
     */
    TestingPgBouncer(Path dir, Endpoint backend, String database, String user, String password, Path certificate,
            Path privateKey) throws IOException, InterruptedException {
        requireNonNull(dir, "dir is null");
        this.port = freePort();
        this.logFile = dir.resolve("pgbouncer.log");
        Path cert = Files.copy(certificate, dir.resolve("server.crt"));
        Path key = Files.copy(privateKey, dir.resolve("server.key"));
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
        Path users = dir.resolve("userlist.txt");
        Files.writeString(users, "\"" + user + "\" \"" + password + "\"\n");
        Files.setPosixFilePermissions(users, PosixFilePermissions.fromString("rw-------"));
        Path ini = dir.resolve("pgbouncer.ini");
        Files.writeString(ini, String.join("\n",
                "[databases]",
                database + " = host=" + backend.host() + " port=" + backend.port() + " dbname=" + database,
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                "listen_port = " + port,
                "unix_socket_dir =",
                "auth_type = scram-sha-256",
                "auth_file = " + users,
                "pool_mode = session",
                "max_client_conn = 1000",
                "default_pool_size = 150",
                "client_tls_sslmode = require",
                "client_tls_protocols = tlsv1.2,tlsv1.3",
                "client_tls_cert_file = " + cert,
                "client_tls_key_file = " + key,
                "server_tls_sslmode = disable",
                "logfile = " + logFile,
                "log_connections = 0",
                "log_disconnections = 0",
                "ignore_startup_parameters = extra_float_digits",
                ""));
        ServiceUser serviceUser = ServiceUser.resolve(ServiceUser.DEFAULT_NAME);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        serviceUser.chown(dir);
        process = new ProcessBuilder(serviceUser.wrap(List.of(BINARY, ini.toString())))
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve("pgbouncer.out").toFile())
                .start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (!accepts(port)) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                close();
                throw new IllegalStateException("pgbouncer did not start on port " + port + ": "
                        + Files.readString(dir.resolve("pgbouncer.out"))
                        + (Files.exists(logFile) ? Files.readString(logFile) : "")
                        + "; is the Debian package pgbouncer installed (bench/run installs it)?");
            }
            Thread.sleep(50);
        }
    }

    /** CPU time PgBouncer has used so far (user + system), from /proc; 10 ms resolution. */
    long cpuNanos() {
        try {
            String stat = Files.readString(Path.of("/proc/" + process.pid() + "/stat"));
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            // after the command: state is field 3, utime 14 and stime 15 (1-based over the whole line)
            long ticks = Long.parseLong(fields[11]) + Long.parseLong(fields[12]);
            return ticks * 10_000_000L;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read pgbouncer's CPU time", e);
        }
    }

    int port() {
        return port;
    }

    /** The first line of {@code pgbouncer --version}, e.g. {@code PgBouncer 1.18.0}. */
    static String version() {
        ExternalClient.Result result = ExternalClient.run(List.of(BINARY, "--version"), Map.of(), null,
                java.time.Duration.ofSeconds(10));
        return result.stdout().lines().findFirst().orElse("PgBouncer (version unknown)").strip();
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    private static boolean accepts(int port) {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", port), 200);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UncheckedIOException(new IOException("interrupted while stopping pgbouncer", e));
        }
    }
}
