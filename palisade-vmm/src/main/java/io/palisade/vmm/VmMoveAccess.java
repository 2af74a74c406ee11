package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.AdminAccess;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.HostRoute;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.TenantPlace;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a move between rungs needs of a VM: where its tenant's objects are ({@link #tenantPlace}) and, for a VM that is
 * a move's target, a temporary way out to the source server on this host ({@link #routeToHost}).
 *
 * <p>A route is a {@link HostRelay} on the host end of the VM's veth link plus, in the VM's namespace, the rules of
 * {@link VmNetwork#rules(NetworkPool.Slot, java.util.Collection)} for the relay's port: the guest dials its gateway on
 * that port and reaches the relay, which pipes to the source's loopback address; nothing else becomes reachable.
 * Closing the route restores the namespace's base rules (plus the VM's other open routes) and stops the relay. If
 * palisade dies with a route open, the relay dies with it (the host answers the guest's connections with a reset) and
 * the rules stay until the VM's next cold boot, which rebuilds its namespace, or the next route opened for that VM,
 * which rewrites them. Thread-safe: the open routes are guarded by {@code this}.
 */
final class VmMoveAccess {
    private static final Logger log = LoggerFactory.getLogger(VmMoveAccess.class);
    /** The tenant's objects live in {@code public} of its own database, its extensions too. */
    static final String NAMESPACE = "public";
    /** A subscription's apply worker, its table-sync workers and the CREATE/ALTER/DROP SUBSCRIPTION connections. */
    static final int MAX_ROUTE_CONNECTIONS = 16;

    private final VmDriver driver;
    private final Map<String, Map<Integer, Route>> routes = new HashMap<>();

    VmMoveAccess(VmDriver driver) {
        this.driver = requireNonNull(driver, "driver is null");
    }

    /**
     * The management role (see {@link VmDriver#adminAccess}), the tenant's database and role read from the guest's
     * catalog, {@code public}, and the VM's endpoint on this host.
     */
    TenantPlace tenantPlace(String id) {
        requireNonNull(id, "id is null");
        AdminAccess admin = driver.adminAccess(id); // fails with CONFLICT unless the VM runs
        Endpoint server = driver.endpoint(id); // where adminAccess connects too
        try (Connection connection = driver.managementConnection(id)) {
            Tenant tenant = tenant(connection, id);
            return new TenantPlace(admin, tenant.database(), NAMESPACE, tenant.role(), NAMESPACE, server);
        } catch (SQLException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot read the tenant's database of vm " + id
                    + " at " + server + ": " + VmDriver.safeMessage(e) + "; check that the VM is up, then retry", e);
        }
    }

    /**
     * The tenant's database and role: the databases (other than {@code postgres} and the server's templates; one the
     * tenant flagged IS_TEMPLATE still counts) owned by a login role that is not a superuser; if there are several,
     * those whose owner has a password (the template's untouched {@code app} has none). Exactly one must remain.
     */
    static Tenant tenant(Connection admin, String id) throws SQLException {
        List<Tenant> all = new ArrayList<>();
        try (Statement s = admin.createStatement();
                ResultSet rs = s.executeQuery("SELECT d.datname, r.rolname, r.rolpassword IS NOT NULL"
                        + " FROM pg_database d JOIN pg_authid r ON r.oid = d.datdba"
                        + " WHERE d.datname NOT IN ('template0', 'template1', '" + GuestAdmin.MANAGEMENT_DATABASE + "')"
                        + " AND r.rolcanlogin AND NOT r.rolsuper ORDER BY 1")) {
            while (rs.next()) {
                all.add(new Tenant(rs.getString(1), rs.getString(2), rs.getBoolean(3)));
            }
        }
        List<Tenant> candidates = all.size() <= 1 ? all : all.stream().filter(Tenant::hasPassword).toList();
        if (candidates.size() != 1) {
            throw new PalisadeException(ErrorCode.CONFLICT, "vm " + id + " has " + (all.isEmpty() ? "no" : "no single")
                    + " tenant database (databases owned by a non-superuser login: "
                    + all.stream().map(t -> t.database() + " owned by " + t.role()).toList()
                    + "); a move needs exactly one, owned by the tenant's role");
        }
        return candidates.getFirst();
    }

    /** A database owned by a login role that is not a superuser. */
    record Tenant(String database, String role, boolean hasPassword) {
        Tenant {
            requireNonNull(database, "database is null");
            requireNonNull(role, "role is null");
        }
    }

    /**
     * Opens a route from the running VM's guest to {@code hostEndpoint} (a loopback address of this host): a relay on
     * the host end of the VM's veth link and the namespace's rules for its port. The endpoint it returns is the guest's
     * gateway on that port.
     */
    HostRoute routeToHost(String id, Endpoint hostEndpoint) {
        requireNonNull(id, "id is null");
        requireNonNull(hostEndpoint, "hostEndpoint is null");
        if (!driver.isRunning(id)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "vm " + id + " is not running"
                    + (driver.isSuspended(id) ? " (suspended); resume it" : "; start it")
                    + " before opening a route from it to " + hostEndpoint);
        }
        NetworkPool.Slot slot = driver.networkPool().find(id).orElseThrow(() -> new PalisadeException(
                ErrorCode.DRIVER_FAILURE, "vm " + id + " is running but has no network slot; destroy it"));
        VmNetwork network = driver.network(id);
        HostRelay relay = HostRelay.open("vm-route-" + id, slot.hostAddress(), slot.namespaceAddress(), hostEndpoint,
                MAX_ROUTE_CONNECTIONS);
        Route route = new Route(id, slot, relay, new Endpoint(network.guestGateway(), relay.port()), hostEndpoint);
        synchronized (this) {
            Map<Integer, Route> open = routes.computeIfAbsent(id, k -> new HashMap<>());
            open.put(relay.port(), route);
            try {
                network.applyRules(slot, open.keySet());
            } catch (RuntimeException e) {
                open.remove(relay.port());
                if (open.isEmpty()) {
                    routes.remove(id);
                }
                relay.close();
                try { // iptables-restore replaces a table whole or not at all; write the other routes' rules again
                    if (network.namespaceExists()) {
                        network.applyRules(slot, open.keySet());
                    }
                } catch (RuntimeException again) {
                    e.addSuppressed(again);
                }
                throw e;
            }
        }
        log.info("vm {}: route open from the guest ({}) to {} through {}:{}", id, route.endpoint(), hostEndpoint,
                slot.hostAddress(), relay.port());
        return route;
    }

    /** Closes every route of the VM (it is stopping or going away). */
    void closeRoutes(String id) {
        List<Route> open;
        synchronized (this) {
            Map<Integer, Route> byPort = routes.get(id);
            open = byPort == null ? List.of() : List.copyOf(byPort.values());
        }
        open.forEach(Route::close);
    }

    /** Closes every route of every VM (palisade is stopping). */
    void closeAll() {
        Set<String> ids;
        synchronized (this) {
            ids = new TreeSet<>(routes.keySet());
        }
        ids.forEach(this::closeRoutes);
    }

    private void close(Route route) {
        synchronized (this) {
            Map<Integer, Route> open = routes.get(route.id);
            if (open == null || open.get(route.relay.port()) != route) {
                return;
            }
            open.remove(route.relay.port());
            if (open.isEmpty()) {
                routes.remove(route.id);
            }
            VmNetwork network = driver.network(route.id);
            try {
                if (network.namespaceExists()) {
                    network.applyRules(route.slot, open.keySet());
                }
            } catch (RuntimeException e) {
                // the relay is stopped below, so the rules lead nowhere; the VM's next cold boot rebuilds them
                log.warn("vm {}: cannot remove the rules of the route to {} ({}); its relay is stopped", route.id,
                        route.hostEndpoint, e.getMessage());
            }
        }
        route.relay.close();
        log.info("vm {}: route to {} closed", route.id, route.hostEndpoint);
    }

    /** One open route; closing it is idempotent. */
    private final class Route implements HostRoute {
        private final String id;
        private final NetworkPool.Slot slot;
        private final HostRelay relay;
        private final Endpoint endpoint;
        private final Endpoint hostEndpoint;

        Route(String id, NetworkPool.Slot slot, HostRelay relay, Endpoint endpoint, Endpoint hostEndpoint) {
            this.id = id;
            this.slot = slot;
            this.relay = relay;
            this.endpoint = endpoint;
            this.hostEndpoint = hostEndpoint;
        }

        @Override
        public Endpoint endpoint() {
            return endpoint;
        }

        @Override
        public void close() {
            VmMoveAccess.this.close(this);
        }

        @Override
        public String toString() {
            return "HostRoute[vm " + id + ", guest dials " + endpoint + ", relayed to " + hostEndpoint + "]";
        }
    }
}
