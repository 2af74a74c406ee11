package io.palisade.proxy;

import io.palisade.pgwire.SessionSettings;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The startup parameters the proxy accepts from a client and passes to the database after authentication. Anything
 * else ({@code replication}, unknown names, names smuggled in through a NUL in a URL-decoded user or database) is
 * refused before the database id is even looked at, with one error that is the same for every id. Names compare like
 * PostgreSQL's settings: case-insensitively. Stateless and thread-safe.
 */
final class StartupParameters {
    /**
     * The login and routing parameters, and the session settings both front doors pass ({@link SessionSettings}).
     * Settings beyond these can still be given in {@code options} ({@code -c name=value}), which the database checks
     * after authentication.
     */
    static final Set<String> ALLOWED = Stream.concat(Stream.of("user", "database", "options",
            "fallback_application_name"), SessionSettings.PASSED.stream()).collect(Collectors.toUnmodifiableSet());

    private StartupParameters() {}

    /** The error text for the first parameter the proxy refuses, or empty if all are allowed. */
    static Optional<String> refusal(Map<String, String> parameters) {
        for (String name : parameters.keySet()) {
            if (!ALLOWED.contains(name.toLowerCase(Locale.ROOT))) {
                return Optional.of("the startup parameter \"" + truncate(name) + "\" is not supported through the"
                        + " palisade proxy (replication connections are not offered); pass settings as"
                        + " options='-c name=value' instead");
            }
        }
        return Optional.empty();
    }

    private static String truncate(String name) {
        return name.length() <= 64 ? name : name.substring(0, 64) + "...";
    }
}
