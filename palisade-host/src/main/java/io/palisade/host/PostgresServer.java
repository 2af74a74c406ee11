package io.palisade.host;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One PostgreSQL postmaster that palisade owns: started as the service user (inside a cgroup if given), ready once it
 * answers the protocol probe, stopped with a bounded fast shutdown then killed; or {@linkplain #adopt taken over}
 * from an earlier run of palisade that left it running. Thread-safe: stop is idempotent and may race with a health
 * check.
 */
public final class PostgresServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PostgresServer.class);
    public static final String ADMIN_ROLE = "palisade_admin";

    /** How to start one server. {@code settings} become {@code -c key=value} options (no secrets: they are visible). */
    public record Options(
            PostgresBinaries binaries,
            Path dataDir,
            String listenAddress,
            int port,
            Path socketDir,
            Path logFile,
            ServiceUser user,
            Optional<Cgroups.Group> cgroup,
            Map<String, String> settings,
            Duration startTimeout) {
        public Options {
            requireNonNull(binaries, "binaries is null");
            requireNonNull(dataDir, "dataDir is null");
            requireNonNull(listenAddress, "listenAddress is null");
            requireNonNull(socketDir, "socketDir is null");
            requireNonNull(logFile, "logFile is null");
            requireNonNull(user, "user is null");
            requireNonNull(cgroup, "cgroup is null");
            settings = Map.copyOf(requireNonNull(settings, "settings is null"));
            requireNonNull(startTimeout, "startTimeout is null");
        }
    }

    private final Options options;
    private final ProcessHandle process;
    /** The process this JVM started (to reap it and read its exit code); null for an adopted server. */
    private final Process child;
    private final Instant startedAt;

    private PostgresServer(Options options, ProcessHandle process, Process child, Instant startedAt) {
        this.options = options;
        this.process = process;
        this.child = child;
        this.startedAt = startedAt;
    }

    /**
     * Creates a data directory with {@code initdb}: superuser {@link #ADMIN_ROLE}, trust on the (private) Unix socket
     * only, SCRAM for TCP, UTF-8, C locale.
     */
    public static void initdb(PostgresBinaries binaries, Path dataDir, ServiceUser user) {
        initdb(binaries, dataDir, user, Optional.empty());
    }

    /** As {@link #initdb(PostgresBinaries, Path, ServiceUser)}, giving the superuser the password in {@code pwfile}. */
    public static void initdb(PostgresBinaries binaries, Path dataDir, ServiceUser user, Optional<Path> pwfile) {
        try {
            Files.createDirectories(dataDir.getParent());
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot create " + dataDir.getParent(), e);
        }
        Processes.check(List.of("mkdir", "-p", dataDir.toString()), Duration.ofSeconds(10));
        Processes.check(List.of("chmod", "700", dataDir.toString()), Duration.ofSeconds(10));
        user.chown(dataDir);
        List<String> command = new ArrayList<>(List.of(
                binaries.bin("initdb").toString(),
                "-D", dataDir.toString(),
                "-U", ADMIN_ROLE,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions"));
        pwfile.ifPresent(file -> command.add("--pwfile=" + file));
        Processes.check(user.wrap(command), Duration.ofMinutes(3));
    }

    public static PostgresServer start(Options options) {
        stopLeftover(options.dataDir());
        try {
            Files.createDirectories(options.logFile().getParent());
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot create log file " + options.logFile(), e);
        }
        SafeFiles.ensurePlainFile(options.logFile());
        Processes.check(List.of("mkdir", "-p", options.socketDir().toString()), Duration.ofSeconds(10));
        Processes.check(List.of("chmod", "700", options.socketDir().toString()), Duration.ofSeconds(10));
        options.user().chown(options.socketDir());
        options.user().chown(options.logFile());

        List<String> postgres = postgresCommand(options);
        // a session of its own (setsid execs in place: the child is no group leader, so the pid stays the postmaster's):
        // Ctrl-C on a terminal running palisade reaches palisade alone, which then stops or keeps its servers as set
        List<String> command = new ArrayList<>(List.of("setsid", "sh", "-c"));
        String join = options.cgroup().map(g -> g.joinShellCommand() + " && ").orElse("");
        command.add(join + "exec \"$0\" \"$@\"");
        // the log is opened by the service user's shell, not by root: a link the tenant put in its place reaches only
        // what the service user could write anyway
        List<String> logged = new ArrayList<>(List.of("sh", "-c", "exec >>\"$0\" 2>&1; exec \"$@\"",
                options.logFile().toString()));
        logged.addAll(postgres);
        command.addAll(options.user().wrap(logged));

        ProcessBuilder builder = Processes.builder(command)
                .redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        builder.environment().put("LD_LIBRARY_PATH", options.binaries().home().resolve("lib").toString());
        Instant startedAt = Instant.now();
        Process process;
        try {
            process = builder.start();
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot start postgres: " + e.getMessage(), e);
        }
        drainStartOutput(process);
        PostgresServer server = new PostgresServer(options, process.toHandle(), process, startedAt);
        try {
            server.awaitReady();
            return server;
        } catch (RuntimeException e) {
            server.close();
            throw e;
        }
    }

    /** The postmaster's own command line for these options: binary, data directory, every setting as {@code -c}. */
    static List<String> postgresCommand(Options options) {
        Map<String, String> settings = new LinkedHashMap<>();
        settings.put("listen_addresses", options.listenAddress());
        settings.put("port", Integer.toString(options.port()));
        settings.put("unix_socket_directories", options.socketDir().toString());
        settings.put("unix_socket_permissions", "0700");
        // sorted: Options holds an immutable map, whose order differs from one JVM to the next, and a later run of
        // palisade must build the very same command line to take the server over
        settings.putAll(new TreeMap<>(options.settings()));
        List<String> postgres = new ArrayList<>(List.of(options.binaries().bin("postgres").toString(), "-D",
                options.dataDir().toString()));
        settings.forEach((key, value) -> {
            postgres.add("-c");
            postgres.add(key + "=" + value);
        });
        return postgres;
    }

    /**
     * Takes over the postmaster an earlier run of palisade started with exactly these options and left running
     * ({@code agent.stop-instances-on-exit=false}, or a control plane that was killed), so a restart of palisade does
     * not restart its tenants. It is found through {@code postmaster.pid}, which is the tenant's to write, and taken
     * at its word only as {@link RunningPostmaster} checks it against {@code /proc} (the real binary, the exact command
     * line {@link #start} would give it, its user, palisade's namespaces, its cgroup), and only if it answers the
     * protocol probe on its port. Its configuration files are then reloaded (SIGHUP), as a start would read them.
     * Empty otherwise, or if the options changed (a resize, new binaries): the caller then {@linkplain #start starts}
     * a server, which stops the one running first.
     */
    public static Optional<PostgresServer> adopt(Options options) {
        Optional<ProcessHandle> found = RunningPostmaster.find(options, postgresCommand(options));
        if (found.isEmpty()) {
            return Optional.empty();
        }
        ProcessHandle handle = found.get();
        PostgresServer server = new PostgresServer(options, handle, null,
                handle.info().startInstant().orElseGet(Instant::now));
        if (!PgProbe.isReady(server.endpoint(), Duration.ofSeconds(2)) || !Processes.signal(handle, "HUP")) {
            return Optional.empty();
        }
        return Optional.of(server);
    }

    /**
     * As {@link #adopt(Options)} for the server last started on the port recorded in {@code portFile} (whether or not
     * the port is free now), with the options {@code optionsForPort} gives for that port; empty without a record.
     */
    public static Optional<PostgresServer> adopt(Path portFile, IntFunction<Options> optionsForPort) {
        OptionalInt port = recordedPort(portFile);
        return port.isPresent() ? adopt(optionsForPort.apply(port.getAsInt())) : Optional.empty();
    }

    /** The port recorded in {@code portFile} (read without following links); empty without a valid record. */
    private static OptionalInt recordedPort(Path portFile) {
        try {
            int port = Integer.parseInt(SafeFiles.readSmall(portFile, 64).orElse(""));
            return port > 0 && port <= 65_535 ? OptionalInt.of(port) : OptionalInt.empty();
        } catch (NumberFormatException | PalisadeException e) {
            return OptionalInt.empty();
        }
    }

    /** What the wrapper shells print before the log is opened (a failed cgroup join or setpriv), to palisade's log. */
    private static void drainStartOutput(Process process) {
        Thread.ofVirtual().name("postgres-start-output").start(() -> {
            try (var reader = process.inputReader(StandardCharsets.UTF_8)) {
                String line;
                while ((line = reader.readLine()) != null) {
                    log.warn("postgres pid {} before its log opened: {}", process.pid(), line);
                }
            } catch (IOException ignored) {
                // the process went away
            }
        });
    }

    private void awaitReady() {
        Endpoint endpoint = endpoint();
        long deadline = System.nanoTime() + options.startTimeout().toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new PalisadeException(
                        ErrorCode.DRIVER_FAILURE,
                        "postgres exited with code " + (child != null ? Integer.toString(child.exitValue()) : "?")
                                + " during start; log tail: "
                                + String.join(" | ", Processes.tailFile(options.logFile(), 5)));
            }
            if (PgProbe.isReady(endpoint, Duration.ofSeconds(1))) {
                return;
            }
            Processes.sleep(Duration.ofMillis(10));
        }
        throw new PalisadeException(
                ErrorCode.TIMEOUT,
                "postgres did not accept connections on " + endpoint + " within " + options.startTimeout().toSeconds()
                        + " s; log tail: " + String.join(" | ", Processes.tailFile(options.logFile(), 5)));
    }

    public Endpoint endpoint() {
        String host = options.listenAddress().equals("*") || options.listenAddress().isEmpty()
                ? "127.0.0.1"
                : options.listenAddress().split(",")[0].strip();
        return new Endpoint(host, options.port());
    }

    public long pid() {
        return process.pid();
    }

    public Instant startedAt() {
        return startedAt;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public Options options() {
        return options;
    }

    /** The Unix socket file of this server, for management connections. */
    public Path socketFile() {
        return options.socketDir().resolve(".s.PGSQL." + options.port());
    }

    /** Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL. Idempotent. */
    @Override
    public void close() {
        stop(process, Duration.ofSeconds(20));
        if (child == null) {
            return; // not this JVM's child: nothing to reap, and stop waited for its exit
        }
        try {
            child.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Stops a postmaster left running from an earlier run of palisade (found through {@code postmaster.pid}). The pid
     * file is the tenant's to write: it is read without following links, and the pid is signalled only if that process
     * is a postgres started on this very data directory, so a forged pid file cannot make palisade stop another server.
     */
    public static void stopLeftover(Path dataDir) {
        RunningPostmaster.pidInFile(dataDir).ifPresent(pid -> {
            // the handle binds the pid to the process checked: a pid reused meanwhile is never signalled
            Optional<ProcessHandle> handle = ProcessHandle.of(pid);
            if (handle.isPresent() && isPostgresOn(pid, dataDir)) {
                log.info("stopping leftover postgres pid {} on {}", pid, dataDir);
                stop(handle.get(), Duration.ofSeconds(20));
            }
        });
    }

    /** True if {@code pid} runs a postgres whose arguments name {@code dataDir} ({@code -D <dataDir>}). */
    static boolean isPostgresOn(long pid, Path dataDir) {
        List<String> arguments = RunningPostmaster.commandLine(pid);
        int d = arguments.indexOf("-D");
        return !arguments.isEmpty() && arguments.getFirst().endsWith("postgres") && d >= 0
                && d + 1 < arguments.size() && arguments.get(d + 1).equals(dataDir.toString());
    }

    /** Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL, each only while that very process lives. */
    static void stop(ProcessHandle postmaster, Duration fastTimeout) {
        if (Processes.signal(postmaster, "INT") && Processes.awaitExit(postmaster, fastTimeout)) {
            return;
        }
        if (Processes.signal(postmaster, "QUIT") && Processes.awaitExit(postmaster, Duration.ofSeconds(5))) {
            return;
        }
        if (Processes.signal(postmaster, "KILL")) {
            Processes.awaitExit(postmaster, Duration.ofSeconds(5));
        }
    }

    /**
     * A short, private directory for a server's Unix socket (socket paths are limited to 107 bytes, data directories
     * can be deep): {@code /run/palisade/<name>} as root, else {@code $TMPDIR/palisade-<uid>/<name>}.
     */
    public static Path socketDirFor(String name) {
        int uid = ServiceUser.currentUid();
        Path base = uid == 0 && Files.isDirectory(Path.of("/run"))
                ? Path.of("/run/palisade")
                : Path.of(System.getProperty("java.io.tmpdir"), "palisade-" + uid);
        return base.resolve(name);
    }

    /**
     * Starts a server with the options {@code optionsForPort} gives for a port, and records the port in
     * {@code portFile} (replaced, never followed). The first start uses the port recorded there if it is still free (a
     * server keeps its port across restarts, so its URLs stay stable), or a free one; when a start fails (most likely
     * the free port was taken between probe and bind) the next uses another free port, up to {@code attempts} starts.
     * The last failure is thrown. {@code name} names the server in the log.
     */
    public static PostgresServer startOnRecordedPort(String name, Path portFile, IntFunction<Options> optionsForPort,
            int attempts) {
        if (attempts < 1) {
            throw new IllegalArgumentException("attempts must be at least 1, not " + attempts);
        }
        PalisadeException last = null;
        for (int attempt = 0; attempt < attempts; attempt++) {
            int port = attempt == 0 ? previousPort(portFile).orElseGet(PostgresServer::freePort) : freePort();
            PostgresServer server;
            try {
                server = start(optionsForPort.apply(port));
            } catch (PalisadeException e) {
                last = e;
                log.warn("start of {} failed (attempt {} of {}): {}", name, attempt + 1, attempts, e.getMessage());
                continue;
            }
            try {
                SafeFiles.replace(portFile, Integer.toString(port), Optional.empty());
            } catch (RuntimeException e) {
                server.close();
                throw e;
            }
            return server;
        }
        throw last;
    }

    /**
     * The port recorded in {@code portFile} last time, if it is still free: a server keeps its port across restarts, so
     * its URLs stay stable.
     */
    private static Optional<Integer> previousPort(Path portFile) {
        OptionalInt port = recordedPort(portFile);
        if (port.isEmpty()) {
            return Optional.empty();
        }
        try (var probe = new ServerSocket(port.getAsInt(), 1, InetAddress.getLoopbackAddress())) {
            return Optional.of(port.getAsInt());
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** A TCP port that was free a moment ago on the loopback interface. */
    public static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.CAPACITY_EXHAUSTED, "no free TCP port on loopback", e);
        }
    }
}
