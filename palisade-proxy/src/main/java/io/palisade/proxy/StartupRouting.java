package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What a StartupMessage asks for, decided from the packet and the SNI host alone (never from whether the id exists):
 * the user, the database, the parameters to pass on (whitelisted, {@code endpoint=} tokens stripped from
 * {@code options}), the {@code _pq_.} options to decline, and the database id if SNI or {@code options} named one; or
 * the error that refuses it. Stateless and thread-safe.
 */
final class StartupRouting {
    private StartupRouting() {}

    /** The outcome: exactly one of {@code route} and {@code refusal} is present. */
    record Result(Optional<Route> route, Optional<Refusal> refusal) {
        Result {
            requireNonNull(route, "route is null");
            requireNonNull(refusal, "refusal is null");
        }
    }

    /** An accepted startup: whom to authenticate, and where (empty id: ask for the cleartext password form). */
    record Route(String user, String database, StartupMessage startup, List<String> unrecognized,
            boolean negotiate, Optional<String> databaseId) {
        Route {
            requireNonNull(user, "user is null");
            requireNonNull(database, "database is null");
            requireNonNull(startup, "startup is null");
            unrecognized = List.copyOf(unrecognized);
            requireNonNull(databaseId, "databaseId is null");
        }
    }

    /** A refused startup: the FATAL error to send, and the rejection reason for the metrics (null: not counted). */
    record Refusal(String sqlState, String message, String reason) {
        Refusal {
            requireNonNull(sqlState, "sqlState is null");
            requireNonNull(message, "message is null");
        }
    }

    static Result route(StartupMessage message, String sniHost, String domain) {
        String user = message.user();
        if (user == null || user.isEmpty()) {
            return refuse(PgWire.SQLSTATE_INVALID_AUTHORIZATION, "no PostgreSQL user name specified in startup packet",
                    null);
        }
        List<String> unrecognized = new ArrayList<>();
        Map<String, String> parameters = new LinkedHashMap<>();
        message.parameters().forEach((name, value) -> {
            if (name.startsWith("_pq_.")) {
                unrecognized.add(name);
            } else {
                parameters.put(name, value);
            }
        });
        Optional<String> refusal = StartupParameters.refusal(parameters);
        if (refusal.isPresent()) {
            return refuse(PgWire.SQLSTATE_FEATURE_NOT_SUPPORTED, refusal.get(), "startup-parameter");
        }
        Optional<String> fromSni;
        Optional<String> fromOptions;
        try {
            fromSni = Routing.fromSni(sniHost, domain);
            fromOptions = Routing.fromOptions(parameters.get("options"));
        } catch (Routing.RoutingException e) {
            return refuse(PgWire.SQLSTATE_REJECTED_CONNECTION, e.getMessage(), null);
        }
        if (fromSni.isPresent() && fromOptions.isPresent() && !fromSni.get().equals(fromOptions.get())) {
            return refuse(PgWire.SQLSTATE_REJECTED_CONNECTION, Routing.inconsistent(fromSni.get(), fromOptions.get()),
                    "inconsistent-endpoint");
        }
        if (parameters.containsKey("options")) {
            Optional<String> rest = Routing.stripEndpoint(parameters.get("options"));
            if (rest.isPresent()) {
                parameters.put("options", rest.get());
            } else {
                parameters.remove("options");
            }
        }
        String database = parameters.getOrDefault("database", user);
        boolean negotiate = message.minorVersion() > 0 || !unrecognized.isEmpty();
        return new Result(Optional.of(new Route(user, database, message.withVersion(3, 0).withParameters(parameters),
                unrecognized, negotiate, fromSni.or(() -> fromOptions))), Optional.empty());
    }

    private static Result refuse(String sqlState, String message, String reason) {
        return new Result(Optional.empty(), Optional.of(new Refusal(sqlState, message, reason)));
    }
}
