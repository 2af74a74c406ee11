package io.palisade.server.console;

import static java.util.Objects.requireNonNull;

import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Signed-in console users. The API key stays here, in memory on the server, under a random session id that the browser
 * holds in an HttpOnly, SameSite=Strict cookie; the page never sees the key. A session ends on sign-out, after
 * {@link #IDLE} without a request, {@link #LIFETIME} after sign-in, or when palisade restarts. Sessions are looked up
 * by a hash of their id so the map holds no usable cookie. Thread-safe.
 */
public final class ConsoleSessions {
    public static final String COOKIE = "palisade_console";
    public static final Duration IDLE = Duration.ofMinutes(30);
    /** How long a session lasts at most, however busy: then its user signs in again. */
    public static final Duration LIFETIME = Duration.ofHours(12);
    /** Sessions one API key may hold at once (browsers and devices signed in with it). */
    public static final int MAX_PER_KEY = 20;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Map<String, Session> sessions = new ConcurrentHashMap<>();
    private final Clock clock;
    private final Duration idle;

    public ConsoleSessions() {
        this(Clock.systemUTC(), IDLE);
    }

    ConsoleSessions(Clock clock, Duration idle) {
        this.clock = requireNonNull(clock, "clock is null");
        this.idle = requireNonNull(idle, "idle is null");
    }

    /** One signed-in browser: the key it signed in with and the token its state-changing requests must carry. */
    public record Session(String apiKey, String csrfToken, Instant opened, Instant lastSeen) {
        public Session {
            requireNonNull(apiKey, "apiKey is null");
            requireNonNull(csrfToken, "csrfToken is null");
            requireNonNull(opened, "opened is null");
            requireNonNull(lastSeen, "lastSeen is null");
        }

        @Override
        public String toString() {
            return "Session[apiKey=***, csrfToken=***]";
        }
    }

    /**
     * Starts a session for a key the API accepted; returns the session id for the cookie. A key holds at most
     * {@link #MAX_PER_KEY} sessions: beyond that its least recently used one ends, so signing in in a loop cannot fill
     * the server's memory.
     */
    public String open(String apiKey) {
        expire();
        String id = randomToken();
        String own = hash(id);
        sessions.put(own, new Session(apiKey, randomToken(), clock.instant(), clock.instant()));
        List<Map.Entry<String, Session>> others = sessions.entrySet().stream()
                .filter(e -> !e.getKey().equals(own) && e.getValue().apiKey().equals(apiKey))
                .sorted(Comparator.comparing(e -> e.getValue().lastSeen())).toList();
        for (int i = 0; i < others.size() - (MAX_PER_KEY - 1); i++) {
            sessions.remove(others.get(i).getKey());
        }
        return id;
    }

    /** The live session with this id, its idle timer restarted; empty when unknown or idle too long. */
    public Optional<Session> touch(String id) {
        return find(id, true);
    }

    /**
     * The live session with this id; {@code activity} restarts its idle timer. A page's automatic refreshes are no
     * activity, so an open but unattended tab still times out.
     */
    public Optional<Session> find(String id, boolean activity) {
        if (id == null || id.isEmpty()) {
            return Optional.empty();
        }
        Instant now = clock.instant();
        Session session = sessions.computeIfPresent(hash(id), (k, s) -> ended(s, now) ? null
                : activity ? new Session(s.apiKey(), s.csrfToken(), s.opened(), now) : s);
        return Optional.ofNullable(session);
    }

    public void close(String id) {
        if (id != null) {
            sessions.remove(hash(id));
        }
    }

    public int size() {
        expire();
        return sessions.size();
    }

    private void expire() {
        Instant now = clock.instant();
        sessions.values().removeIf(s -> ended(s, now));
    }

    private boolean ended(Session session, Instant now) {
        return session.lastSeen().plus(idle).isBefore(now) || session.opened().plus(LIFETIME).isBefore(now);
    }

    static String randomToken() {
        byte[] bytes = new byte[32];
        RANDOM.nextBytes(bytes);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    private static String hash(String id) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256")
                    .digest(id.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            return Base64.getUrlEncoder().withoutPadding().encodeToString(digest);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }
}
