package io.palisade.pgwire;

import java.security.SecureRandom;
import java.util.Base64;

/**
 * Computes PostgreSQL's SCRAM-SHA-256 password verifier ({@code SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>})
 * so that a plaintext password never reaches a server, its statement log or {@code pg_stat_statements}. Passwords are
 * ASCII (generated), so SASLprep is the identity. Stateless.
 */
public final class ScramVerifier {
    /** PostgreSQL's default {@code scram_iterations}. */
    public static final int ITERATIONS = 4096;
    private static final SecureRandom RANDOM = new SecureRandom();

    private ScramVerifier() {}

    public static String of(String password) {
        byte[] salt = new byte[16];
        RANDOM.nextBytes(salt);
        return of(password, salt, ITERATIONS);
    }

    public static String of(String password, byte[] salt, int iterations) {
        if (iterations < 1) {
            throw new IllegalArgumentException("SCRAM iterations must be positive: " + iterations);
        }
        byte[] salted = ScramClient.saltedPassword(password.toCharArray(), salt, iterations);
        byte[] storedKey = ScramClient.sha256(ScramClient.hmac(salted, "Client Key"));
        byte[] serverKey = ScramClient.hmac(salted, "Server Key");
        Base64.Encoder b64 = Base64.getEncoder();
        return "SCRAM-SHA-256$" + iterations + ":" + b64.encodeToString(salt) + "$" + b64.encodeToString(storedKey)
                + ":" + b64.encodeToString(serverKey);
    }
}
