package io.palisade.broker;

import io.palisade.pgwire.SessionSettings;
import io.palisade.broker.NeonHttp.BadRequest;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.UnaryOperator;

/**
 * The startup parameters a broker client may send, checked before anything else (so an unknown database and a known
 * one get the same answer): session settings that are harmless for any login pass on to PostgreSQL, connection-routing
 * hints ({@code options} with only {@code endpoint=}/{@code project=}, {@code sslmode}...) are accepted and dropped,
 * everything else ({@code replication}, {@code -c} options, unknown names) is refused. Stateless.
 */
final class StartupParameters {
    /** Passed on to the server: the session settings both front doors pass ({@link SessionSettings}). */
    static final Set<String> PASSED = SessionSettings.PASSED;
    /** Accepted in a {@code /sql} connection string's query and ignored. */
    static final Set<String> URL_IGNORED = Set.of("sslmode", "sslnegotiation", "channel_binding", "connect_timeout",
            "application_name", "options");

    private StartupParameters() {}

    /**
     * The parameters of a StartupMessage to send to the server besides user and database, or a refusal (the message
     * of {@link IllegalArgumentException}) naming the first parameter that is not allowed.
     */
    static Map<String, String> forServer(Map<String, String> startup) {
        Map<String, String> passed = new LinkedHashMap<>();
        for (Map.Entry<String, String> parameter : startup.entrySet()) {
            String name = parameter.getKey().toLowerCase(Locale.ROOT);
            if (name.equals("user") || name.equals("database") || name.equals("fallback_application_name")) {
                continue;
            }
            if (name.equals("options")) {
                if (!routingOnly(parameter.getValue())) {
                    throw new IllegalArgumentException(refusal("options"));
                }
                continue;
            }
            if (!PASSED.contains(name)) {
                throw new IllegalArgumentException(refusal(parameter.getKey()));
            }
            passed.put(parameter.getKey(), parameter.getValue());
        }
        return passed;
    }

    /** Checks the query of a {@code /sql} connection string: only {@link #URL_IGNORED} names, none of them used. */
    static void checkUrlQuery(String query, UnaryOperator<String> decode) throws BadRequest {
        for (String pair : query.split("&")) {
            if (pair.isEmpty()) {
                continue;
            }
            int equals = pair.indexOf('=');
            String name = decode.apply(equals < 0 ? pair : pair.substring(0, equals)).toLowerCase(Locale.ROOT);
            String value = equals < 0 ? "" : decode.apply(pair.substring(equals + 1));
            if (!URL_IGNORED.contains(name) || (name.equals("options") && !routingOnly(value))) {
                String shown = name.replace('\0', '?');
                throw new BadRequest("invalid header: neon-connection-string (unsupported startup parameter \""
                        + (shown.length() > 64 ? shown.substring(0, 64) + "..." : shown) + "\": the SQL broker "
                        + "accepts only " + String.join(", ", new TreeSet<>(URL_IGNORED))
                        + " there, and options only with endpoint=/project=)");
            }
        }
    }

    /** {@code options} that only name the endpoint or project (as Neon clients without SNI send). */
    private static boolean routingOnly(String options) {
        for (String word : options.trim().split("\\s+")) {
            if (!word.isEmpty() && !word.startsWith("endpoint=") && !word.startsWith("project=")) {
                return false;
            }
            if (word.indexOf('\0') >= 0) {
                return false;
            }
        }
        return true;
    }

    private static String refusal(String name) {
        Set<String> allowed = new TreeSet<>(PASSED);
        allowed.add("options (endpoint=/project= only)");
        String shown = name.length() > 64 ? name.substring(0, 64) + "..." : name;
        return "unsupported startup parameter \"" + shown + "\": the SQL broker accepts only user, database and "
                + String.join(", ", allowed);
    }
}
