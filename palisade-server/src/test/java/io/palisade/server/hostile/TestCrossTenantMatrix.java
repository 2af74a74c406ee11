package io.palisade.server.hostile;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.server.TestingPalisade;
import io.palisade.server.console.ConsoleHttp;
import io.palisade.server.hostile.HostileTenants.Tenant;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Two accounts, each with databases on the host's rungs, try each other's: every registered route (read from the
 * running router, so a new route fails this class until it is classified here) with the other account's database id
 * answers exactly as for an id that does not exist (404, never 403); a wrong API key gets 401 and sees nothing; one
 * database's password, user or database name does not open another's through the proxy (28P01), the broker's
 * {@code /sql} or {@code /v2}; one database's broker token is 401 on another's broker routes. The owners' databases
 * still answer afterwards.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestCrossTenantMatrix {
    /** Routes that name no database: what each must not show is checked in {@link #routesWithoutAnIdShowNothing}. */
    private static final Set<String> WITHOUT_ID = Set.of("GET /v1/health", "GET /v1/openapi.json", "GET /v1/databases",
            "POST /v1/databases", "GET /metrics", "POST /sql", "GET /sql", "OPTIONS /sql", "WS /v2");

    /**
     * Web console routes that name no database: they take the console's session cookie, not a Bearer key, and show only
     * the signed-in account's databases ({@link #theConsoleShowsOnlyTheSignedInAccount}).
     */
    private static final Set<String> CONSOLE_WITHOUT_ID = Set.of("GET /console", "GET /console/signin",
            "POST /console/signin", "POST /console/signout", "GET /console/assets/{name}", "GET /console/databases",
            "GET /console/databases/rows", "POST /console/databases", "GET /console/host");

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private HostileTenants tenants;
    private Tenant ownerProcess;
    private Tenant ownerDatabase;
    private Tenant otherProcess;
    private Tenant otherSchema;

    @BeforeAll
    void open() {
        tenants = HostileTenants.open();
        ownerProcess = tenants.create(tenants.ownerKey(), "owner-process", "process");
        ownerDatabase = tenants.create(tenants.ownerKey(), "owner-database", "database");
        otherProcess = tenants.create(tenants.otherKey(), "other-process", "process");
        otherSchema = tenants.create(tenants.otherKey(), "other-schema", "schema");
    }

    @AfterAll
    void close() {
        if (tenants != null) {
            tenants.close();
        }
    }

    private List<Tenant> all() {
        return List.of(ownerProcess, ownerDatabase, otherProcess, otherSchema);
    }

    @Test
    void everyRouteIsClassified() {
        Set<String> registered = RegisteredRoutes.of(tenants.palisade().server());
        System.out.println("registered routes: " + registered);
        Set<String> unclassified = new TreeSet<>(registered);
        unclassified.removeIf(route -> WITHOUT_ID.contains(route) || accountRoute(route) || brokerRoute(route)
                || CONSOLE_WITHOUT_ID.contains(route) || consoleRoute(route));
        assertThat(unclassified).as("routes this matrix does not test: classify them here").isEmpty();
        assertThat(registered).as("the routes the matrix knows are still registered").containsAll(WITHOUT_ID)
                .containsAll(CONSOLE_WITHOUT_ID);
    }

    @Test
    void anotherAccountsDatabaseIsNotFoundOnEveryApiRoute() {
        List<String> failures = new ArrayList<>();
        for (String route : RegisteredRoutes.of(tenants.palisade().server())) {
            if (!accountRoute(route)) {
                continue;
            }
            String method = route.substring(0, route.indexOf(' '));
            String template = route.substring(route.indexOf(' ') + 1);
            for (Tenant victim : all()) {
                String attacker = victim.key().equals(tenants.ownerKey()) ? tenants.otherKey() : tenants.ownerKey();
                String unknownId = unknownId(victim.id());
                TestingPalisade.Response foreign = call(method, template, victim.id(), attacker);
                TestingPalisade.Response unknown = call(method, template, unknownId, attacker);
                String label = route + " on " + victim;
                if (foreign.status() != 404) {
                    failures.add(label + " with another account's key: " + foreign.status() + " " + foreign.body());
                } else if (!foreign.body().replace(victim.id(), "{id}").equals(unknown.body().replace(unknownId,
                        "{id}"))) {
                    failures.add(label + ": another account's id answers differently from an unknown one: "
                            + foreign.body() + " vs " + unknown.body());
                }
                for (String key : java.util.Arrays.asList("pk_" + "0".repeat(40), null)) {
                    TestingPalisade.Response wrong = call(method, template, victim.id(), key);
                    if (wrong.status() != 401) {
                        failures.add(label + " with " + (key == null ? "no key" : "a wrong key") + ": "
                                + wrong.status() + " " + wrong.body());
                    }
                }
            }
        }
        assertThat(failures).isEmpty();
        for (Tenant tenant : all()) {
            assertThat(tenants.describe(tenant).path("status").asText()).as("%s untouched", tenant)
                    .isEqualTo("running");
            HostileTenants.assertAnswers(tenant);
        }
    }

    @Test
    void routesWithoutAnIdShowNothing() throws Exception {
        TestingPalisade palisade = tenants.palisade();
        String otherList = palisade.request("GET", "/v1/databases", null, tenants.otherKey()).body();
        assertThat(otherList).contains(otherProcess.id()).doesNotContain(ownerProcess.id(), ownerDatabase.id());
        String ownerList = palisade.request("GET", "/v1/databases", null, tenants.ownerKey()).body();
        assertThat(ownerList).contains(ownerProcess.id()).doesNotContain(otherProcess.id(), otherSchema.id());
        for (String key : java.util.Arrays.asList("pk_" + "0".repeat(40), null)) {
            TestingPalisade.Response list = palisade.request("GET", "/v1/databases", null, key);
            assertThat(list.status()).isEqualTo(401);
            TestingPalisade.Response create = palisade.request("POST", "/v1/databases", "{\"label\":\"x\"}", key);
            assertThat(create.status()).isEqualTo(401);
            TestingPalisade.Response metrics = palisade.request("GET", "/metrics", null, key);
            assertNoIds("GET /metrics with " + (key == null ? "no key" : "a wrong key"), metrics.body());
        }
        assertNoIds("GET /v1/health", palisade.request("GET", "/v1/health", null, null).body());
        assertNoIds("GET /v1/openapi.json", palisade.request("GET", "/v1/openapi.json", null, null).body());
        assertNoIds("GET /sql", palisade.request("GET", "/sql", null, null).body());
        HttpResponse<String> preflight = http.send(HttpRequest.newBuilder(URI.create(palisade.apiUrl() + "/sql"))
                .method("OPTIONS", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        assertNoIds("OPTIONS /sql", preflight.body());
    }

    @Test
    void aPasswordOpensOnlyItsOwnDatabase() throws Exception {
        List<String> failures = new ArrayList<>();
        for (Tenant victim : all()) {
            for (Tenant thief : all()) {
                if (thief == victim) {
                    continue;
                }
                Map<String, String[]> logins = new java.util.LinkedHashMap<>();
                logins.put("its user, the other's password",
                        new String[] {victim.username(), thief.password(), victim.database()});
                logins.put("the other's user and password",
                        new String[] {thief.username(), thief.password(), victim.database()});
                logins.put("the other's user, password and database",
                        new String[] {thief.username(), thief.password(), thief.database()});
                logins.put("its user and password, the other's database",
                        new String[] {victim.username(), victim.password(), thief.database()});
                for (var login : logins.entrySet()) {
                    String[] l = login.getValue();
                    if (l[0].equals(victim.username()) && l[1].equals(victim.password())
                            && l[2].equals(victim.database())) {
                        continue; // same names on both (nothing crosses)
                    }
                    String state = HostileTenants.loginError(victim, l[0], l[1], l[2]);
                    if (!"28P01".equals(state)) {
                        failures.add("proxy: " + victim + " with " + login.getKey() + " of " + thief + ": " + state);
                    }
                }
                HttpResponse<String> sql = sqlOverHttp(victim.serverlessUrl(victim.username(), thief.password()));
                HttpResponse<String> unknown = sqlOverHttp(victim.serverlessUrl(victim.username(), thief.password())
                        .replace(victim.id(), unknownId(victim.id())));
                if (sql.statusCode() == 200 || !sql.body().equals(unknown.body())) {
                    failures.add("/sql: " + victim + " with the password of " + thief + ": " + sql.statusCode() + " "
                            + sql.body() + " (unknown id: " + unknown.body() + ")");
                }
                try (BrokerWebSocket ws = BrokerWebSocket.open(http, tenants.palisade().apiUrl(), victim.hostname())) {
                    String state = ws.login(victim.username(), victim.database(), thief.password(),
                            Duration.ofSeconds(20));
                    if (!"28P01".equals(state)) {
                        failures.add("/v2: " + victim + " with the password of " + thief + ": " + state);
                    }
                }
            }
        }
        assertThat(failures).isEmpty();
        for (Tenant tenant : all()) {
            HostileTenants.assertAnswers(tenant);
            assertThat(sqlOverHttp(tenant.serverlessUrl(tenant.username(), tenant.password())).statusCode())
                    .as("the owner on /sql").isEqualTo(200);
            try (BrokerWebSocket ws = BrokerWebSocket.open(http, tenants.palisade().apiUrl(), tenant.hostname())) {
                assertThat(ws.login(tenant.username(), tenant.database(), tenant.password(), Duration.ofSeconds(20)))
                        .as("the owner on /v2").isEqualTo("ok");
            }
        }
    }

    @Test
    void aBrokerTokenOpensOnlyItsOwnDatabase() throws Exception {
        List<String> failures = new ArrayList<>();
        for (String route : RegisteredRoutes.of(tenants.palisade().server())) {
            if (!brokerRoute(route)) {
                continue;
            }
            String method = route.substring(0, route.indexOf(' '));
            String template = route.substring(route.indexOf(' ') + 1);
            // health needs no token: whoever sends a wrong one gets the anonymous answer, the database unchecked
            boolean health = template.endsWith("/v1/health");
            int refused = health ? 200 : 401;
            for (Tenant victim : all()) {
                HttpResponse<String> invented = broker(method, template, unknownId(victim.id()), "pbt_invented");
                String attackerKey = victim.key().equals(tenants.ownerKey()) ? tenants.otherKey() : tenants.ownerKey();
                Map<String, String> foreignCredentials = new java.util.LinkedHashMap<>();
                for (Tenant thief : all()) {
                    if (thief != victim) {
                        foreignCredentials.put("the token of " + thief, thief.brokerToken());
                    }
                }
                foreignCredentials.put("the other account's API key", attackerKey);
                foreignCredentials.put("a wrong API key", "pk_" + "0".repeat(40));
                for (var credential : foreignCredentials.entrySet()) {
                    HttpResponse<String> foreign = broker(method, template, victim.id(), credential.getValue());
                    if (foreign.statusCode() != refused
                            || !withoutTime(foreign.body()).equals(withoutTime(invented.body()))) {
                        failures.add(route + " on " + victim + " with " + credential.getKey() + ": "
                                + foreign.statusCode() + " " + foreign.body() + " (unknown: " + invented.body() + ")");
                    }
                }
                for (String own : List.of(victim.brokerToken(), victim.key())) {
                    HttpResponse<String> answer = broker(method, template, victim.id(), own);
                    // create and drop may be refused on their merits (the shared rungs), never as a stranger
                    boolean opened = template.contains("/v1/databases") && !method.equals("GET")
                            ? answer.statusCode() != 401 && answer.statusCode() < 500
                            : answer.statusCode() == 200 && !answer.body().contains("\"unchecked\"");
                    if (!opened) {
                        failures.add(route + " on " + victim + " with its own " + (own.equals(victim.key())
                                ? "account's API key" : "token") + ": " + answer.statusCode() + " " + answer.body());
                    }
                }
            }
        }
        assertThat(failures).isEmpty();
    }

    @Test
    void anotherAccountsDatabaseIsNotFoundInTheConsole() {
        ConsoleHttp owner = ConsoleHttp.signIn(tenants.palisade().apiUrl(), tenants.ownerKey());
        ConsoleHttp other = ConsoleHttp.signIn(tenants.palisade().apiUrl(), tenants.otherKey());
        ConsoleHttp nobody = ConsoleHttp.anonymous(tenants.palisade().apiUrl());
        List<String> failures = new ArrayList<>();
        for (String route : RegisteredRoutes.of(tenants.palisade().server())) {
            if (!consoleRoute(route)) {
                continue;
            }
            String method = route.substring(0, route.indexOf(' '));
            String template = route.substring(route.indexOf(' ') + 1);
            for (Tenant victim : all()) {
                ConsoleHttp attacker = victim.key().equals(tenants.ownerKey()) ? other : owner;
                String unknownId = unknownId(victim.id());
                ConsoleHttp.Response foreign = console(attacker, method, template, victim.id());
                ConsoleHttp.Response unknown = console(attacker, method, template, unknownId);
                String label = route + " on " + victim;
                if (foreign.status() != 404) {
                    failures.add(label + " in another account's console: " + foreign.status() + " " + foreign.body());
                } else if (!foreign.body().replace(victim.id(), "{id}").equals(unknown.body().replace(unknownId,
                        "{id}"))) {
                    failures.add(label + ": another account's id answers differently from an unknown one: "
                            + foreign.body() + " vs " + unknown.body());
                }
                if (method.equals("GET")) {
                    ConsoleHttp.Response own = console(attacker == owner ? other : owner, method, template,
                            victim.id());
                    if (own.status() != 200) {
                        failures.add(label + " in its owner's console: " + own.status() + " " + own.body());
                    }
                }
                ConsoleHttp.Response anonymous = console(nobody, method, template, victim.id());
                if (anonymous.status() != 401 || anonymous.body().contains(victim.id())) {
                    failures.add(label + " without a console session: " + anonymous.status() + " "
                            + anonymous.body());
                }
            }
        }
        assertThat(failures).isEmpty();
        for (Tenant tenant : all()) {
            assertThat(tenants.describe(tenant).path("status").asText()).as("%s untouched", tenant)
                    .isEqualTo("running");
        }
    }

    @Test
    void theConsoleShowsOnlyTheSignedInAccount() {
        String api = tenants.palisade().apiUrl();
        ConsoleHttp other = ConsoleHttp.signIn(api, tenants.otherKey());
        for (String path : List.of("/console/databases", "/console/databases/rows", "/console/host")) {
            String body = other.page(path).body();
            assertThat(body).as(path).contains(path.endsWith("host") ? "Your instances" : otherProcess.id())
                    .doesNotContain(ownerProcess.id(), ownerDatabase.id());
            ConsoleHttp.Response anonymous = ConsoleHttp.anonymous(api).page(path);
            assertThat(anonymous.status()).as(path + " without a session").isEqualTo(302);
            assertNoIds(path + " without a session", anonymous.body());
        }
        ConsoleHttp.Response wrongKey = ConsoleHttp.anonymous(api).trySignIn("pk_" + "0".repeat(40));
        assertThat(wrongKey.status()).isEqualTo(401);
        assertNoIds("sign-in with a wrong key", wrongKey.body());
    }

    /** A console request as the console's own page would send it (form fields that get past input checks). */
    private static ConsoleHttp.Response console(ConsoleHttp session, String method, String template, String id) {
        String path = template.replace("{id}", id);
        if (method.equals("GET")) {
            return session.get(path);
        }
        Map<String, String> form = new java.util.LinkedHashMap<>();
        form.put("confirm", id);
        form.put("sql", "select 1");
        form.put("isolation", "schema");
        return session.post(path, form);
    }

    private static boolean consoleRoute(String route) {
        return route.contains(" /console/") && route.contains("{id}");
    }

    private static String withoutTime(String body) {
        return body.replaceAll("\"ts\":\"[^\"]*\"", "\"ts\":\"\"");
    }

    /** Owner-only routes on one database, e.g. …/stats, …/logs, …/metrics (the sampler's charts), …/backups. */
    private static boolean accountRoute(String route) {
        return route.contains(" /v1/databases/{id}") && !brokerRoute(route);
    }

    /** PandaStack's broker routes under {@code broker_url}: the broker token or the owning account's API key. */
    private static boolean brokerRoute(String route) {
        return route.contains(" /v1/databases/{id}/proxy/");
    }

    private TestingPalisade.Response call(String method, String template, String id, String key) {
        String path = template.replace("{id}", id);
        String body = switch (method) {
            case "POST", "PATCH", "PUT" -> template.endsWith("/isolation") ? "{\"isolation\":\"schema\"}"
                    : template.endsWith("/restore") ? "{\"latest\":true}" : "{}";
            default -> null;
        };
        return tenants.palisade().request(method, path, body, key);
    }

    private HttpResponse<String> broker(String method, String template, String id, String token) throws Exception {
        String body = template.endsWith("/transaction")
                ? "{\"database\":\"pandastack\",\"statements\":[{\"sql\":\"select 1\"}]}"
                : template.endsWith("/v1/databases") ? "{\"name\":\"matrix_made\"}"
                : "{\"database\":\"pandastack\",\"sql\":\"select 1\"}";
        HttpRequest.Builder request = HttpRequest.newBuilder(
                        URI.create(tenants.palisade().apiUrl() + template.replace("{id}", id)
                                .replace("{name}", "matrix_made")))
                .timeout(Duration.ofSeconds(60)).header("Authorization", "Bearer " + token);
        request.method(method, method.equals("GET") ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofString(body));
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> sqlOverHttp(String connectionString) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(tenants.palisade().apiUrl() + "/sql"))
                .timeout(Duration.ofSeconds(60)).header("Neon-Connection-String", connectionString)
                .POST(HttpRequest.BodyPublishers.ofString("{\"query\":\"select 1\",\"params\":[]}")).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private void assertNoIds(String what, String body) {
        for (Tenant tenant : all()) {
            assertThat(body).as("%s shows no database id", what).doesNotContain(tenant.id());
        }
    }

    /** An id of the same shape that no database has. */
    static String unknownId(String id) {
        char last = id.charAt(id.length() - 1);
        return id.substring(0, id.length() - 2) + (last == 'q' ? "xz" : "qx");
    }
}
