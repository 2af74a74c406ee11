package io.palisade.pgwire;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The SCRAM salted passwords (PBKDF2) of recent logins, so that palisade's many logins to the same tenant server with
 * the same password, salt and iteration count (the proxy and the broker log in once per client connection) derive the
 * key once instead of every time. A salted password is as sensitive as the password it came from: the cache lives in
 * memory only, is keyed by a digest (never the password), and holds at most {@link #CAPACITY} entries, the least
 * recently used dropped first. Thread-safe.
 */
final class SaltedPasswords {
    static final int CAPACITY = 4096;
    private static final Map<String, byte[]> CACHE = new LinkedHashMap<>(256, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, byte[]> eldest) {
            return size() > CAPACITY;
        }
    };

    private SaltedPasswords() {}

    /** PBKDF2-HMAC-SHA-256 of the password with this salt and count, from the cache when it was derived before. */
    static byte[] of(char[] password, byte[] salt, int iterations) {
        String key = key(password, salt, iterations);
        synchronized (CACHE) {
            byte[] known = CACHE.get(key);
            if (known != null) {
                return known.clone();
            }
        }
        byte[] derived = ScramClient.saltedPassword(password, salt, iterations);
        synchronized (CACHE) {
            CACHE.put(key, derived.clone());
        }
        return derived;
    }

    private static String key(char[] password, byte[] salt, int iterations) {
        byte[] secret = StandardCharsets.UTF_8.encode(java.nio.CharBuffer.wrap(password)).array();
        ByteBuffer material = ByteBuffer.allocate(4 + salt.length + 4 + secret.length)
                .putInt(salt.length).put(salt).putInt(iterations).put(secret);
        byte[] digest = ScramClient.sha256(material.array());
        java.util.Arrays.fill(secret, (byte) 0);
        java.util.Arrays.fill(material.array(), (byte) 0);
        return Base64.getEncoder().encodeToString(digest);
    }
}
