package io.palisade.proxy;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * How the proxy finds the database a client wants: from the TLS SNI host {@code <id>.<domain>}, from an
 * {@code endpoint=<id>} token in the {@code options} startup parameter, or from a cleartext password of the form
 * {@code endpoint=<id>;<password>}. Stateless and thread-safe.
 */
final class Routing {
    static final String ENDPOINT_OPTION = "endpoint=";
    private static final Pattern DATABASE_ID = Pattern.compile("[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?");

    private Routing() {}

    /** A client-facing routing failure; the message is the text the client sees. */
    static final class RoutingException extends RuntimeException {
        RoutingException(String message) {
            super(message, null, false, false);
        }
    }

    static boolean isValidDatabaseId(String id) {
        return id != null && DATABASE_ID.matcher(id).matches();
    }

    /**
     * The database id named by an SNI host, or empty when the client sent no SNI or a host that is not under
     * {@code domain} (e.g. {@code localhost}, which then needs the options or password form).
     *
     * @throws RoutingException if the host is under the domain but is not exactly one valid label deep
     */
    static Optional<String> fromSni(String sniHost, String domain) {
        if (sniHost == null || sniHost.isEmpty()) {
            return Optional.empty();
        }
        String host = sniHost.toLowerCase(Locale.ROOT);
        if (host.endsWith(".")) {
            host = host.substring(0, host.length() - 1);
        }
        String suffix = "." + domain;
        if (!host.endsWith(suffix)) {
            return Optional.empty();
        }
        String label = host.substring(0, host.length() - suffix.length());
        if (!isValidDatabaseId(label)) {
            throw new RoutingException("the host name '" + host + "' does not name a database: expected <database-id>"
                    + suffix);
        }
        return Optional.of(label);
    }

    /**
     * The database id from {@code endpoint=<id>} tokens in the options parameter, if any.
     *
     * @throws RoutingException if several tokens name different databases
     */
    static Optional<String> fromOptions(String options) {
        String found = null;
        for (String token : splitOptions(options)) {
            if (token.startsWith(ENDPOINT_OPTION)) {
                String id = token.substring(ENDPOINT_OPTION.length()).toLowerCase(Locale.ROOT);
                if (found != null && !found.equals(id)) {
                    throw new RoutingException("the options parameter names two databases ('" + found + "' and '" + id
                            + "'): pass exactly one endpoint=<database-id>");
                }
                found = id;
            }
        }
        return Optional.ofNullable(found);
    }

    /** The options parameter without its {@code endpoint=} tokens; empty if nothing else was in it. */
    static Optional<String> stripEndpoint(String options) {
        List<String> kept = new ArrayList<>();
        for (String token : splitOptions(options)) {
            if (!token.startsWith(ENDPOINT_OPTION)) {
                kept.add(token);
            }
        }
        return kept.isEmpty() ? Optional.empty() : Optional.of(String.join(" ", kept));
    }

    /** Splits like the server does: on unescaped whitespace; tokens keep their backslash escapes verbatim. */
    static List<String> splitOptions(String options) {
        List<String> tokens = new ArrayList<>();
        if (options == null) {
            return tokens;
        }
        StringBuilder current = new StringBuilder();
        for (int i = 0; i < options.length(); i++) {
            char c = options.charAt(i);
            if (c == '\\' && i + 1 < options.length()) {
                current.append(c).append(options.charAt(++i));
            } else if (Character.isWhitespace(c)) {
                if (!current.isEmpty()) {
                    tokens.add(current.toString());
                    current.setLength(0);
                }
            } else {
                current.append(c);
            }
        }
        if (!current.isEmpty()) {
            tokens.add(current.toString());
        }
        return tokens;
    }

    /** A cleartext password that carried the database id. */
    record PasswordRoute(String databaseId, String password) {}

    /** Parses {@code endpoint=<id>;<password>} (or {@code $} as the separator); empty if it is not of that form. */
    static Optional<PasswordRoute> fromPassword(String password) {
        if (password == null || !password.startsWith(ENDPOINT_OPTION)) {
            return Optional.empty();
        }
        String rest = password.substring(ENDPOINT_OPTION.length());
        int separator = -1;
        for (int i = 0; i < rest.length(); i++) {
            char c = rest.charAt(i);
            if (c == ';' || c == '$') {
                separator = i;
                break;
            }
        }
        if (separator <= 0) {
            return Optional.empty();
        }
        return Optional.of(new PasswordRoute(
                rest.substring(0, separator).toLowerCase(Locale.ROOT), rest.substring(separator + 1)));
    }

    static String inconsistent(String sniId, String optionId) {
        return "Inconsistent project name inferred from SNI ('" + sniId + "') and project option ('" + optionId + "').";
    }

    static String endpointNotSpecified() {
        return "Endpoint ID is not specified. Either please upgrade the postgres client library (libpq) for SNI support"
                + " or pass the endpoint ID (first part of the domain name) as a parameter:"
                + " '?options=endpoint%3D<endpoint-id>', or send the password as 'endpoint=<endpoint-id>;<password>'.";
    }
}
