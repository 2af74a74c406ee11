package io.palisade.pgwire;

import static java.nio.charset.StandardCharsets.UTF_8;
import static java.util.Objects.requireNonNull;

import java.security.MessageDigest;
import java.util.Arrays;

/**
 * The server's side of a SCRAM-SHA-256 password (RFC 5802/7677): salt, iteration count, StoredKey and ServerKey, the
 * four values PostgreSQL keeps in {@code pg_authid}. It checks a client proof in constant time and signs the exchange.
 * Immutable and thread-safe; {@link #toString()} prints no key.
 *
 * @param salt the salt the client is told to use
 * @param iterations the PBKDF2 iteration count the client is told to use
 * @param storedKey {@code H(HMAC(SaltedPassword, "Client Key"))}
 * @param serverKey {@code HMAC(SaltedPassword, "Server Key")}
 */
public record ScramSecret(byte[] salt, int iterations, byte[] storedKey, byte[] serverKey) {
    private static final int KEY_LENGTH = 32;

    public ScramSecret {
        requireNonNull(salt, "salt is null");
        requireNonNull(storedKey, "storedKey is null");
        requireNonNull(serverKey, "serverKey is null");
        if (iterations < 1 || iterations > ScramClient.MAX_ITERATIONS) {
            throw new IllegalArgumentException("SCRAM iterations must be 1.." + ScramClient.MAX_ITERATIONS + ", got "
                    + iterations);
        }
        if (storedKey.length != KEY_LENGTH || serverKey.length != KEY_LENGTH) {
            throw new IllegalArgumentException("SCRAM-SHA-256 keys are 32 bytes");
        }
        salt = salt.clone();
        storedKey = storedKey.clone();
        serverKey = serverKey.clone();
    }

    /** Derives the secret from a password (PBKDF2-HMAC-SHA-256: milliseconds of CPU, keep it off event loops). */
    public static ScramSecret derive(String password, byte[] salt, int iterations) {
        requireNonNull(password, "password is null");
        requireNonNull(salt, "salt is null");
        if (iterations < 1 || iterations > ScramClient.MAX_ITERATIONS) {
            throw new IllegalArgumentException("SCRAM iterations must be 1.." + ScramClient.MAX_ITERATIONS + ", got "
                    + iterations);
        }
        byte[] salted = ScramClient.saltedPassword(password.toCharArray(), salt, iterations);
        try {
            return new ScramSecret(salt, iterations, ScramClient.sha256(ScramClient.hmac(salted, "Client Key")),
                    ScramClient.hmac(salted, "Server Key"));
        } finally {
            Arrays.fill(salted, (byte) 0);
        }
    }

    @Override
    public byte[] salt() {
        return salt.clone();
    }

    @Override
    public byte[] storedKey() {
        return storedKey.clone();
    }

    @Override
    public byte[] serverKey() {
        return serverKey.clone();
    }

    /**
     * Whether {@code proof} proves knowledge of the password for this {@code authMessage}: recovers ClientKey as
     * {@code proof XOR HMAC(StoredKey, authMessage)} and compares its hash with StoredKey in constant time. A proof of
     * the wrong length costs the same work and fails.
     */
    public boolean verifyProof(String authMessage, byte[] proof) {
        requireNonNull(authMessage, "authMessage is null");
        requireNonNull(proof, "proof is null");
        byte[] signature = ScramClient.hmac(storedKey, authMessage.getBytes(UTF_8));
        byte[] clientKey = new byte[KEY_LENGTH];
        for (int i = 0; i < KEY_LENGTH; i++) {
            clientKey[i] = (byte) ((i < proof.length ? proof[i] : 0) ^ signature[i]);
        }
        boolean equal = MessageDigest.isEqual(ScramClient.sha256(clientKey), storedKey);
        return equal & proof.length == KEY_LENGTH;
    }

    /** {@code HMAC(ServerKey, authMessage)}: what the server sends in {@code v=} to prove it knew the secret. */
    public byte[] serverSignature(String authMessage) {
        requireNonNull(authMessage, "authMessage is null");
        return ScramClient.hmac(serverKey, authMessage.getBytes(UTF_8));
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ScramSecret s && iterations == s.iterations && Arrays.equals(salt, s.salt)
                && MessageDigest.isEqual(storedKey, s.storedKey) && MessageDigest.isEqual(serverKey, s.serverKey);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(salt) * 31 + iterations;
    }

    @Override
    public String toString() {
        return "ScramSecret[iterations=" + iterations + ", keys=***]";
    }
}
