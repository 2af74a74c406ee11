package io.palisade.server.hostile;

import io.javalin.Javalin;
import io.palisade.server.PalisadeServer;
import java.lang.reflect.Field;
import java.util.Set;
import java.util.TreeSet;

/**
 * The routes a running palisade really serves, read from its Javalin router (the API's own registration plus what the
 * broker and metrics add), so a hostile-tenant test that must cover every route notices a new one. HTTP routes come as
 * {@code "GET /v1/databases/{id}"}, WebSocket routes as {@code "WS /v2"}. Stateless; public for the OpenAPI contract test.
 */
public final class RegisteredRoutes {
    private static final Set<String> METHODS = Set.of("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD");

    private RegisteredRoutes() {}

    public static Set<String> of(PalisadeServer server) {
        Javalin app = javalin(server);
        Set<String> routes = new TreeSet<>();
        for (var handler : app.unsafeConfig().pvt.internalRouter.allHttpHandlers()) {
            String method = handler.getEndpoint().getMethod().name();
            if (METHODS.contains(method)) {
                routes.add(method + " " + handler.getEndpoint().getPath());
            }
        }
        for (var handler : app.unsafeConfig().pvt.internalRouter.allWsHandlers()) {
            routes.add("WS " + handler.getPath());
        }
        return routes;
    }

    private static Javalin javalin(PalisadeServer server) {
        try {
            Object api = field(server, "api");
            return (Javalin) field(api, "app");
        } catch (ReflectiveOperationException e) {
            throw new AssertionError("cannot read the registered routes (PalisadeServer.api / ApiServer.app renamed?): "
                    + e, e);
        }
    }

    private static Object field(Object owner, String name) throws ReflectiveOperationException {
        Field field = owner.getClass().getDeclaredField(name);
        field.setAccessible(true);
        return field.get(owner);
    }
}
