package io.palisade.server.hostile;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.server.hostile.HostileTenants.Tenant;
import io.palisade.spi.Endpoint;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A tenant tries to leave its database from SQL, logged in as itself through the proxy (PgJDBC): run programs, read
 * and write the server's files, load untrusted languages or C code, reach other servers with dblink or
 * postgres_fdw (the metadata store, a neighbour's server, the host's address), change server settings or make itself
 * superuser. Each attempt must be refused with PostgreSQL's SQLSTATE, on every rung that runs on the host, and the
 * neighbour must still answer afterwards.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestSqlEscapes {
    private static final Set<String> DENIED = Set.of("42501");
    /** Refused because the extension or language is not there to load, or its functions do not exist. */
    private static final Set<String> DENIED_OR_ABSENT = Set.of("42501", "0A000", "58P01", "42704", "42883");

    private HostileTenants tenants;
    private Tenant neighbour;
    private final Map<String, Tenant> attackers = new LinkedHashMap<>();

    @BeforeAll
    void open() {
        tenants = HostileTenants.open();
        neighbour = tenants.create(tenants.otherKey(), "neighbour", "process");
        for (String rung : List.of("process", "database", "schema")) {
            attackers.put(rung, tenants.create(tenants.ownerKey(), "escaper-" + rung, rung));
        }
    }

    @AfterAll
    void close() {
        if (tenants != null) {
            tenants.close();
        }
    }

    /** One attempt: the SQL and the SQLSTATEs PostgreSQL answers a non-superuser with. */
    record Attempt(String what, String sql, Set<String> expected) {}

    @ParameterizedTest
    @ValueSource(strings = {"process", "database", "schema"})
    void escapesFromSqlAreRefused(String rung) throws Exception {
        Tenant attacker = attackers.get(rung);
        List<String> failures = new ArrayList<>();
        try (Connection c = HostileTenants.connect(attacker); Statement s = c.createStatement()) {
            s.execute("create table loot (line text)");
            for (Attempt attempt : attempts()) {
                try {
                    s.execute(attempt.sql());
                    failures.add(attempt.what() + ": SUCCEEDED (" + attempt.sql() + ")");
                } catch (SQLException e) {
                    System.out.printf("%s rung: %-45s -> %s %s%n", rung, attempt.what(), e.getSQLState(),
                            firstLine(e.getMessage()));
                    if (!attempt.expected().contains(e.getSQLState())) {
                        failures.add(attempt.what() + ": " + e.getSQLState() + " " + firstLine(e.getMessage())
                                + " (expected one of " + attempt.expected() + ")");
                    }
                }
            }
            try (var rs = s.executeQuery("select rolsuper, rolcreaterole from pg_roles where rolname = current_user")) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getBoolean(1)).as("the tenant is not superuser").isFalse();
            }
        }
        assertThat(failures).as("escapes from SQL on the %s rung", rung).isEmpty();
        HostileTenants.assertAnswers(neighbour);
        HostileTenants.assertAnswers(attacker);
    }

    private List<Attempt> attempts() {
        List<Attempt> list = new ArrayList<>(List.of(
                new Attempt("COPY TO PROGRAM", "copy (select 1) to program 'id > /tmp/palisade-escape'", DENIED),
                new Attempt("COPY FROM PROGRAM", "copy loot from program 'cat /etc/passwd'", DENIED),
                new Attempt("COPY FROM a server file", "copy loot from '/etc/passwd'", DENIED),
                new Attempt("COPY TO a server file", "copy (select 1) to '/tmp/palisade-escape'", DENIED),
                new Attempt("lo_import a server file", "select lo_import('/etc/passwd')", DENIED),
                new Attempt("lo_export to a server file",
                        "select lo_export(lo_from_bytea(0, 'x'), '/tmp/palisade-escape')", DENIED),
                new Attempt("pg_read_file", "select pg_read_file('/etc/passwd')", DENIED),
                new Attempt("pg_read_binary_file", "select pg_read_binary_file('postgresql.conf')", DENIED),
                new Attempt("pg_ls_dir", "select pg_ls_dir('.')", DENIED),
                new Attempt("grant pg_read_server_files", "grant pg_read_server_files to current_user", DENIED),
                new Attempt("grant pg_execute_server_program", "grant pg_execute_server_program to current_user",
                        DENIED),
                new Attempt("CREATE LANGUAGE plpython3u", "create language plpython3u", DENIED_OR_ABSENT),
                new Attempt("CREATE EXTENSION plperlu", "create extension plperlu", DENIED_OR_ABSENT),
                new Attempt("CREATE EXTENSION plpython3u", "create extension plpython3u", DENIED_OR_ABSENT),
                new Attempt("C function from libc", "create function escape_pid() returns int as 'libc.so.6', 'getpid'"
                        + " language c", DENIED),
                new Attempt("internal-language function", "create function escape_int() returns int as 'int4in'"
                        + " language internal", DENIED),
                new Attempt("CREATE EXTENSION dblink", "create extension dblink", DENIED_OR_ABSENT),
                new Attempt("CREATE EXTENSION postgres_fdw", "create extension postgres_fdw", DENIED_OR_ABSENT),
                new Attempt("CREATE EXTENSION adminpack", "create extension adminpack", DENIED_OR_ABSENT),
                new Attempt("CREATE EXTENSION file_fdw", "create extension file_fdw", DENIED_OR_ABSENT),
                new Attempt("ALTER SYSTEM", "alter system set log_min_messages = 'debug5'", DENIED),
                new Attempt("ALTER SYSTEM archive_command",
                        "alter system set archive_command = 'sh -c id'", DENIED),
                new Attempt("SET log_statement", "set log_statement = 'none'", DENIED),
                new Attempt("SET log_min_duration_statement", "set log_min_duration_statement = -1", DENIED),
                new Attempt("SET session_preload_libraries", "set session_preload_libraries = 'libc.so.6'",
                        DENIED),
                new Attempt("LOAD a library", "load '/lib/x86_64-linux-gnu/libc.so.6'", DENIED),
                new Attempt("ALTER ROLE SET session_preload_libraries",
                        "alter role current_user set session_preload_libraries = 'libc.so.6'", DENIED),
                new Attempt("CREATE ROLE SUPERUSER", "create role escape_super superuser login password 'x'",
                        DENIED),
                new Attempt("ALTER ROLE SUPERUSER", "alter role current_user superuser", DENIED),
                new Attempt("ALTER ROLE BYPASSRLS", "alter role current_user bypassrls", DENIED),
                new Attempt("ALTER ROLE REPLICATION", "alter role current_user replication", DENIED),
                new Attempt("SET ROLE to a superuser", "set role postgres", Set.of("42501", "22023", "42704")),
                new Attempt("pg_terminate_backend of others",
                        "select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid()"
                                + " and usename is distinct from current_user", Set.of("42501"))));
        for (Map.Entry<String, Endpoint> target : targets().entrySet()) {
            String conninfo = "host=" + target.getValue().host() + " port=" + target.getValue().port()
                    + " user=postgres dbname=postgres";
            list.add(new Attempt("dblink to " + target.getKey(), "select dblink_connect_u('" + conninfo + "')",
                    Set.of("42883", "42501")));
            list.add(new Attempt("dblink query to " + target.getKey(),
                    "select * from dblink('" + conninfo + "', 'select 1') as t(x int)", Set.of("42883", "42501")));
            list.add(new Attempt("postgres_fdw server on " + target.getKey(),
                    "create server escape_srv foreign data wrapper postgres_fdw options (host '"
                            + target.getValue().host() + "', port '" + target.getValue().port() + "')",
                    Set.of("42704", "42501")));
        }
        return list;
    }

    /** What a tenant would like to reach: the metadata store, a neighbour's server, this host's own address. */
    private Map<String, Endpoint> targets() {
        Map<String, Endpoint> targets = new LinkedHashMap<>();
        targets.put("the metadata store", new Endpoint("127.0.0.1", storePort()));
        Endpoint next = tenants.palisade().server().service().resolve(neighbour.id()).join().orElseThrow().endpoint();
        targets.put("the neighbour's server", next);
        hostAddress().ifPresent(address -> targets.put("the host's address", new Endpoint(address, next.port())));
        return targets;
    }

    private int storePort() {
        Path store = tenants.palisade().dataDir().resolve("store");
        try (Stream<Path> files = Files.walk(store, 3)) {
            Path pid = files.filter(p -> p.getFileName().toString().equals("postmaster.pid")).findFirst()
                    .orElseThrow(() -> new AssertionError("no postmaster.pid under " + store));
            return Integer.parseInt(Files.readAllLines(pid).get(3).strip());
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static java.util.Optional<String> hostAddress() {
        try {
            return NetworkInterface.networkInterfaces().filter(i -> {
                try {
                    return i.isUp() && !i.isLoopback();
                } catch (java.net.SocketException e) {
                    return false;
                }
            }).flatMap(NetworkInterface::inetAddresses).filter(a -> a instanceof Inet4Address)
                    .map(InetAddress::getHostAddress).findFirst();
        } catch (java.net.SocketException e) {
            return java.util.Optional.empty();
        }
    }

    private static String firstLine(String message) {
        return message == null ? "" : message.lines().findFirst().orElse("");
    }
}
