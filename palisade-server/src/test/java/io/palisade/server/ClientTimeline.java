package io.palisade.server;

import static java.util.Objects.requireNonNull;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What one client saw while its database moved: every query's answer (with the port of the PostgreSQL server that gave
 * it) or error, stamped with the wall-clock time it came back, and what that means for the cutover. An error is
 * <em>clean</em> when the client got an ErrorResponse with a SQLSTATE a client may retry on (the session ended by the
 * server, a serialization failure, a connection exception); a reset or a close without one is not. Thread-safe.
 */
final class ClientTimeline {
    /** SQLSTATEs a client retries on: admin shutdown, crash shutdown, cannot connect now, serialization failure. */
    static final Set<String> RETRYABLE = Set.of("57P01", "57P02", "57P03", "40001");
    private static final Pattern SQLSTATE = Pattern.compile("\\b(?:FATAL|ERROR):\\s+([0-9A-Z]{5}):");

    private final String client;
    private final List<Event> events = new ArrayList<>();

    /**
     * One query's outcome.
     *
     * @param port the answering server's port; 0 for an error
     * @param sqlState the SQLSTATE of the ErrorResponse the client got; null for an answer or an error without one
     */
    record Event(long atMillis, int port, String sqlState, String error) {
        boolean ok() {
            return error == null;
        }

        boolean clean() {
            return sqlState != null && (RETRYABLE.contains(sqlState) || sqlState.startsWith("08"));
        }
    }

    ClientTimeline(String client) {
        this.client = requireNonNull(client, "client is null");
    }

    String client() {
        return client;
    }

    synchronized void answered(long atMillis, int port) {
        events.add(new Event(atMillis, port, null, null));
    }

    /** An error; {@code sqlState} is null when no ErrorResponse came with it. */
    synchronized void failed(long atMillis, String sqlState, String error) {
        events.add(new Event(atMillis, 0, sqlState, requireNonNull(error, "error is null")));
    }

    /** The first SQLSTATE in a psql-style message ({@code FATAL:  57P01: …}, VERBOSITY verbose), or null. */
    static String sqlStateIn(String message) {
        Matcher matcher = SQLSTATE.matcher(message);
        return matcher.find() ? matcher.group(1) : null;
    }

    synchronized long answersFrom(int port) {
        return events.stream().filter(e -> e.ok() && e.port() == port).count();
    }

    synchronized List<Event> events() {
        return List.copyOf(events);
    }

    /**
     * The cutover as this client saw it, around the move's switch at {@code switchedAt} (epoch milliseconds) from the
     * server on {@code sourcePort} to the one on {@code targetPort}.
     */
    synchronized Cutover cutover(long switchedAt, int sourcePort, int targetPort) {
        long lastOnSource = -1;
        long firstOnTarget = -1;
        long firstError = -1;
        List<Event> errors = new ArrayList<>();
        List<Event> strays = new ArrayList<>();
        for (Event event : events) {
            if (!event.ok()) {
                errors.add(event);
                firstError = firstError < 0 ? event.atMillis() : firstError;
            } else if (event.port() == sourcePort) {
                lastOnSource = event.atMillis();
                if (event.atMillis() > switchedAt) {
                    strays.add(event);
                }
            } else if (event.port() == targetPort) {
                firstOnTarget = firstOnTarget < 0 ? event.atMillis() : firstOnTarget;
            } else {
                strays.add(event);
            }
        }
        return new Cutover(client, switchedAt, lastOnSource, firstError, firstOnTarget, List.copyOf(errors),
                List.copyOf(strays));
    }

    /**
     * One client's view of a cutover; times are epoch milliseconds, -1 when it did not happen.
     *
     * @param strays answers from the source after the switch, or from a server that is neither side
     */
    record Cutover(String client, long switchedAt, long lastOnSource, long firstError, long firstOnTarget,
            List<Event> errors, List<Event> strays) {
        List<Event> uncleanErrors() {
            return errors.stream().filter(e -> !e.clean()).toList();
        }

        /** Last answer on the old server → first answer on the new one. */
        long pauseMillis() {
            return firstOnTarget - lastOnSource;
        }

        /** The switch → the first answer on the new server. */
        long afterSwitchMillis() {
            return firstOnTarget - switchedAt;
        }

        /** The first error → the first answer on the new server; -1 without an error. */
        long afterFirstErrorMillis() {
            return firstError < 0 ? -1 : firstOnTarget - firstError;
        }

        String describe() {
            String first = errors.isEmpty() ? "no error"
                    : errors.size() + " error(s), first at " + relative(firstError) + " ("
                            + errors.getFirst().error().lines().findFirst().orElse("").strip() + ")";
            return String.format("%-9s last answer on the old server at %s, %s, first answer on the new server at %s:"
                    + " pause %d ms, %d ms after the switch, %s ms after its first error", client,
                    relative(lastOnSource), first, relative(firstOnTarget), pauseMillis(), afterSwitchMillis(),
                    firstError < 0 ? "-" : Long.toString(afterFirstErrorMillis()));
        }

        private String relative(long at) {
            return at < 0 ? "never" : String.format("%+d ms", at - switchedAt);
        }
    }
}
