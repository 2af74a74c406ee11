package io.palisade.server.hostile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.palisade.server.TestingPalisade;
import io.palisade.server.hostile.HostileTenants.Tenant;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * The security review's findings 1 to 5, each replayed as the attack it describes against a full palisade: what the
 * attacker gets is nothing, and the owner and a neighbour keep working. (Finding 8 needs {@code palisade serve} as its
 * own process: {@link TestChildEnvironment}.)
 */
class TestReviewFindings extends AbstractHostileAttack {
    /** Bytes palisade's JVM may allocate to refuse or cap one hostile request (our own client's copies included). */
    private static final long ALLOCATION_BOUND = 64L << 20;

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    /** With 1 GiB: the smallest plan's 256 MiB cap would end the backend before a 100 MB value is sent. */
    private Tenant bigValues;

    @Override
    protected String label() {
        return "review";
    }

    @Override
    protected void moreTenants() {
        bigValues = tenants.create(tenants.ownerKey(), "review-big-values", "process", ",\"memory_mb\":1024");
    }

    /** Finding 1: connections that never authenticate do not lock the owner out of its database. */
    @Test
    void unauthenticatedConnectionsDoNotLockTheOwnerOut() throws Exception {
        List<RawPgClient> held = new ArrayList<>();
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<RawPgClient>> opening = new ArrayList<>();
            for (int i = 0; i < 120; i++) {
                String source = "127.0.3." + (2 + i % 12);
                opening.add(threads.submit(() -> holdUnauthenticated(source, true)));
            }
            for (Future<RawPgClient> future : opening) {
                RawPgClient client = future.get();
                if (client != null) {
                    held.add(client);
                }
            }
            System.out.printf("finding 1: %d of 120 unauthenticated connections to %s held open%n", held.size(),
                    owner.id());
            HostileTenants.assertAnswers(owner);
            HostileTenants.assertAnswers(neighbour);
            // the owner can also open several at once while they are held
            List<java.sql.Connection> owners = new ArrayList<>();
            try {
                for (int i = 0; i < 5; i++) {
                    owners.add(HostileTenants.connect(owner));
                }
            } finally {
                for (java.sql.Connection c : owners) {
                    c.close();
                }
            }
        } finally {
            held.forEach(RawPgClient::close);
        }
    }

    /** TLS with the owner's SNI and (when {@code startup}) the owner's startup packet; then silence. */
    private RawPgClient holdUnauthenticated(String source, boolean startup) {
        RawPgClient client = null;
        try {
            client = RawPgClient.connect(source, tenants.proxyPort());
            client.startTls(owner.hostname(), tenants.caCertificate());
            if (startup) {
                client.write(RawPgClient.startupPacket(Map.of("user", owner.username(), "database",
                        owner.database())));
                client.readMessage(Duration.ofSeconds(15));
            }
            return client;
        } catch (IOException e) {
            if (client != null) {
                client.close();
            }
            return null; // refused: nothing held
        }
    }

    /**
     * Finding 2: startup parameters that PostgreSQL would reject (replication, unknown settings, parameters injected
     * with NUL bytes) get the same bytes for an existing database as for an unknown one, on the proxy and on the
     * broker.
     */
    @Test
    void startupParametersDoNotRevealWhetherADatabaseExists() throws Exception {
        String unknown = TestCrossTenantMatrix.unknownId(owner.id());
        Map<String, Map<String, String>> probes = new LinkedHashMap<>();
        probes.put("replication=database", params("replication", "database"));
        probes.put("replication=xyz", params("replication", "xyz"));
        probes.put("an unknown setting", params("no_such_setting", "1"));
        probes.put("a protocol extension", params("_pq_.no_such_extension", "1"));
        probes.put("options with -c", params("options", "-c log_min_messages=debug5"));
        Map<String, String> injected = new LinkedHashMap<>();
        injected.put("user", owner.username() + "\0replication\0database");
        injected.put("database", owner.database());
        probes.put("NUL-injected user", injected);
        List<String> failures = new ArrayList<>();
        for (var probe : probes.entrySet()) {
            byte[] known = firstAnswer(owner.hostname(), probe.getValue());
            byte[] absent = firstAnswer(owner.hostname().replace(owner.id(), unknown), probe.getValue());
            System.out.printf("finding 2, proxy, %s: known %s / unknown %s%n", probe.getKey(),
                    RawPgClient.describe(known), RawPgClient.describe(absent));
            if (!Arrays.equals(known, absent)) {
                failures.add("proxy, " + probe.getKey() + ": " + RawPgClient.describe(known) + " vs "
                        + RawPgClient.describe(absent));
            }
        }
        for (String user : List.of(owner.username() + "\0replication\0database", owner.username() + "\0x")) {
            String path = "/" + owner.database();
            HttpResponse<String> known = sqlOverHttp("postgres://" + HostileTenants.enc(user) + ":wrong@"
                    + owner.hostname() + path, "{\"query\":\"select 1\",\"params\":[]}");
            HttpResponse<String> absent = sqlOverHttp("postgres://" + HostileTenants.enc(user) + ":wrong@"
                    + owner.hostname().replace(owner.id(), unknown) + path, "{\"query\":\"select 1\",\"params\":[]}");
            System.out.printf("finding 2, /sql: known %d %s / unknown %d %s%n", known.statusCode(), known.body(),
                    absent.statusCode(), absent.body());
            if (known.statusCode() != absent.statusCode() || !known.body().equals(absent.body())) {
                failures.add("/sql with a NUL in the user: " + known.statusCode() + " " + known.body() + " vs "
                        + absent.statusCode() + " " + absent.body());
            }
        }
        assertThat(failures).isEmpty();
        HostileTenants.assertAnswers(owner);
        HostileTenants.assertAnswers(neighbour);
    }

    private Map<String, String> params(String key, String value) {
        Map<String, String> params = new LinkedHashMap<>();
        params.put("user", owner.username());
        params.put("database", owner.database());
        params.put(key, value);
        return params;
    }

    private byte[] firstAnswer(String hostname, Map<String, String> parameters) throws IOException {
        try (RawPgClient client = RawPgClient.connect("127.0.4.2", tenants.proxyPort())) {
            client.startTls(hostname, tenants.caCertificate());
            client.write(RawPgClient.startupPacket(parameters));
            return client.readMessage(Duration.ofSeconds(20));
        }
    }

    /**
     * Finding 3: a wrong password does not reach the tenant's server (no backend touched, nothing the server logs) and
     * does not count as activity (which would keep a vm awake and wake a suspended one). On the rungs that run here
     * (nothing suspends but vm) this is observed as the tenant's own log and its last-active time.
     */
    @Test
    void aWrongPasswordTouchesNothingOfTheTenant() throws Exception {
        Instant activeBefore = lastActive(owner);
        long failuresLoggedBefore = authFailuresLogged(owner);
        Thread.sleep(1_100); // last-active has one-second resolution at least
        for (int i = 0; i < 5; i++) {
            assertThat(HostileTenants.loginError(owner, owner.username(), "wrong-" + i, owner.database()))
                    .isEqualTo("28P01");
        }
        HttpResponse<String> sql = sqlOverHttp(owner.serverlessUrl(owner.username(), "wrong"),
                "{\"query\":\"select 1\",\"params\":[]}");
        assertThat(sql.statusCode()).as(sql.body()).isNotEqualTo(200);
        try (BrokerWebSocket ws = BrokerWebSocket.open(http, tenants.palisade().apiUrl(), owner.hostname())) {
            assertThat(ws.login(owner.username(), owner.database(), "wrong", Duration.ofSeconds(20)))
                    .isEqualTo("28P01");
        }
        Thread.sleep(1_000); // the server writes its log asynchronously
        assertThat(authFailuresLogged(owner)).as("password failures the tenant's own server saw (it must see none:"
                + " the host checks the password before any backend is touched)").isEqualTo(failuresLoggedBefore);
        assertThat(lastActive(owner)).as("a wrong password is no activity").isEqualTo(activeBefore);
        assertThat(tenants.describe(owner).path("status").asText()).isEqualTo("running");
        HostileTenants.assertAnswers(owner);
        HostileTenants.assertAnswers(neighbour);
    }

    private Instant lastActive(Tenant tenant) {
        return tenants.palisade().server().store().find(tenant.id()).orElseThrow().lastActiveAt();
    }

    private long authFailuresLogged(Tenant tenant) {
        TestingPalisade.Response logs = tenants.palisade().request("GET",
                "/v1/databases/" + tenant.id() + "/logs?lines=10000", null, tenant.key());
        assertThat(logs.status()).as(logs.body()).isEqualTo(200);
        long n = 0;
        for (var line : logs.json().path("lines")) {
            if (line.asText().contains("authentication failed")) {
                n++;
            }
        }
        return n;
    }

    /**
     * Finding 4: {@code /metrics} without a key, with a wrong key, or with another account's key shows no database id;
     * the admin's key still scrapes it.
     */
    @Test
    void metricsShowNoDatabaseIdsToOthers() {
        TestingPalisade palisade = tenants.palisade();
        HostileTenants.assertAnswers(owner); // traffic, so per-database series exist if any do
        for (String key : Arrays.asList(null, "pk_" + "0".repeat(40), tenants.otherKey())) {
            TestingPalisade.Response metrics = palisade.request("GET", "/metrics", null, key);
            assertThat(metrics.body()).as("/metrics with %s (status %d)", key == null ? "no key"
                            : key.equals(tenants.otherKey()) ? "another account's key" : "a wrong key",
                    metrics.status()).doesNotContain(owner.id());
        }
        TestingPalisade.Response admin = palisade.request("GET", "/metrics", null, tenants.ownerKey());
        assertThat(admin.status()).isEqualTo(200);
        assertThat(admin.body()).contains("jvm_memory_used_bytes");
    }

    /**
     * Finding 5: a 100 MB value is refused by the broker without palisade's JVM reading it whole, and a 10 MiB
     * unauthenticated {@code POST /sql} is refused without being parsed into a tree; the JVM's allocation for either
     * stays bounded, and the owner and the neighbour keep working.
     */
    @Test
    void brokerMemoryIsBoundedForHugeValuesAndUnauthenticatedBodies() throws Exception {
        // the first base backups (on the rungs that have them) stream through this JVM: let them finish first
        for (Tenant tenant : List.of(owner, neighbour, bigValues)) {
            awaitFirstBaseBackup(tenant);
        }
        String query = "{\"query\":\"select repeat('x', 100000000) as big\",\"params\":[]}";
        long bigAllocated = leastAllocated("repeat('x', 1e8)", () -> {
            HttpResponse<String> big = sqlOverHttp(bigValues.serverlessUrl(bigValues.username(),
                    bigValues.password()), query);
            assertThat(big.statusCode()).as(abbreviate(big.body())).isNotEqualTo(200);
            assertThat(big.body().length()).isLessThan(10_000);
            assertThat(big.body()).as("the error names the response cap, not a lost backend").doesNotContain(
                    "lost the connection");
            return big;
        });
        assertThat(bigAllocated).as("bytes allocated to refuse a 100 MB value (%d MiB)", bigAllocated >> 20)
                .isLessThan(ALLOCATION_BOUND);

        StringBuilder body = new StringBuilder(10 << 20).append("{\"query\":\"select 1\",\"params\":[");
        while (body.length() < (10 << 20) - 16) {
            body.append("[1,[2]],");
        }
        body.append("1]}");
        byte[] hugeBody = body.toString().getBytes(StandardCharsets.UTF_8);
        String unknownHost = owner.hostname().replace(owner.id(), TestCrossTenantMatrix.unknownId(owner.id()));
        for (String connection : List.of(owner.serverlessUrl(owner.username(), "wrong"),
                "postgres://u:p@" + unknownHost + "/" + owner.database())) {
            long allocated = leastAllocated("unauthenticated 10 MiB POST /sql", () -> {
                HttpResponse<String> refused = sqlOverHttp(connection, hugeBody);
                assertThat(refused.statusCode()).as(refused.body()).isBetween(400, 499);
                return refused;
            });
            assertThat(allocated).as("bytes allocated to refuse an unauthenticated 10 MiB body (%d MiB)",
                    allocated >> 20).isLessThan(ALLOCATION_BOUND);
        }
        HostileTenants.assertAnswers(owner);
        HostileTenants.assertAnswers(neighbour);
        HostileTenants.assertAnswers(bigValues);
        assertThat(sqlOverHttp(owner.serverlessUrl(owner.username(), owner.password()),
                "{\"query\":\"select 1\",\"params\":[]}").statusCode()).isEqualTo(200);
    }

    /**
     * The fewest bytes this JVM allocated over three tries of {@code request}. The count is JVM-wide, so one try can
     * include a neighbour's background work (a reconcile pass, a WAL flush); a server that buffers what it refuses
     * allocates it on every try.
     */
    private static long leastAllocated(String what, Callable<HttpResponse<String>> request) throws Exception {
        long least = Long.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            long before = allocated();
            HttpResponse<String> response = request.call();
            long allocated = allocated() - before;
            System.out.printf("finding 5: %s -> %d %s; JVM allocated %d MiB; heap used %d MiB%n", what,
                    response.statusCode(), abbreviate(response.body()), allocated >> 20, heapUsed() >> 20);
            least = Math.min(least, allocated);
        }
        return least;
    }

    private void awaitFirstBaseBackup(Tenant tenant) {
        await().atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofMillis(200))
                .until(() -> {
                    var backups = tenants.describeBackups(tenant);
                    return !backups.path("available").asBoolean()
                            || !backups.path("window").path("earliest").asText().isEmpty();
                });
    }

    private static long allocated() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        return threads.getTotalThreadAllocatedBytes();
    }

    private static long heapUsed() {
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    private HttpResponse<String> sqlOverHttp(String connectionString, String body) throws Exception {
        return sqlOverHttp(connectionString, body.getBytes(StandardCharsets.UTF_8));
    }

    private HttpResponse<String> sqlOverHttp(String connectionString, byte[] body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(tenants.palisade().apiUrl() + "/sql"))
                .timeout(Duration.ofSeconds(120)).header("Neon-Connection-String", connectionString)
                .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static String abbreviate(String text) {
        return text.length() > 300 ? text.substring(0, 300) + "…" : text;
    }
}
